"""A sweep shared by two workers through a real PostgreSQL server: a throwaway server is
started for the test (initdb + pg_ctl from the system's PostgreSQL, which .ci/run installs),
two `minigrad tune` processes run against one study at the same time, and the study ends with
exactly the budgeted trials, none run twice, and the same best result reported by both."""

from __future__ import annotations

import glob
import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile

import pytest

from isolated import PACKAGE_ROOT, child_environment


def _program(name: str) -> str | None:
    found = shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found if isinstance(found, str) else (found[-1] if found else None)


INITDB, PG_CTL = _program("initdb"), _program("pg_ctl")
pytestmark = pytest.mark.skipif(
    INITDB is None
    or PG_CTL is None
    or any(importlib.util.find_spec(m) is None for m in ("optuna", "psycopg", "sklearn")),
    reason="needs PostgreSQL's initdb/pg_ctl (apt install postgresql), optuna, psycopg and scikit-learn",
)


@pytest.fixture
def postgres_url():
    """A fresh PostgreSQL server on a free loopback port, removed afterwards. PostgreSQL refuses
    to run as root: as root it runs as the system's postgres user."""
    folder = tempfile.mkdtemp(prefix="minigrad-pg-")
    as_user = []
    if os.geteuid() == 0:
        import pwd

        user = pwd.getpwnam("postgres")
        os.chown(folder, user.pw_uid, user.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = os.path.join(folder, "data")
    run = dict(capture_output=True, text=True, timeout=120, check=True)
    subprocess.run([*as_user, INITDB, "-D", data, "-A", "trust", "-U", "postgres", "--no-sync"], **run)
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c fsync=off"
    subprocess.run(
        [*as_user, PG_CTL, "-D", data, "-l", os.path.join(folder, "log"), "-o", options, "-w", "start"], **run
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, PG_CTL, "-D", data, "-m", "immediate", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


def test_two_workers_share_one_study_on_postgresql(postgres_url):
    import optuna

    budget = 6
    command = [sys.executable, "-m", "minigrad.cli", "tune", "--model", "mlp", "--epochs", "1", "--train-size", "300",
               "--trials", str(budget), "--storage", postgres_url, "--study-name", "shared"]  # fmt: skip
    workers = [
        subprocess.Popen(
            [*command, "--seed", str(seed)],
            env=child_environment(OMP_NUM_THREADS="1"),
            cwd=PACKAGE_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for seed in (1, 2)
    ]
    outputs = [w.communicate(timeout=600) for w in workers]
    for worker, (_, err) in zip(workers, outputs):
        assert worker.returncode == 0, err[-3000:]
    best = [re.search(r"best validation accuracy: ([0-9.]+)", out).group(1) for out, _ in outputs]
    configurations = [re.search(r"best configuration: (.*)", out).group(1) for out, _ in outputs]
    assert best[0] == best[1] and configurations[0] == configurations[1]  # the same study, the same answer

    study = optuna.load_study(study_name="shared", storage=postgres_url)
    ran = [t for t in study.trials if not t.user_attrs.get("over_budget")]
    assert len(ran) == budget and sorted(t.number for t in ran) == list(range(budget))
    assert all(t.state.name in ("COMPLETE", "PRUNED") for t in ran)
    assert all(isinstance(t.user_attrs.get("worker"), str) for t in ran)  # each trial ran on exactly one worker
    reported = [int(n) for out, _ in outputs for n in re.findall(r"^trial (\d+):", out, re.M)]
    assert sorted(n for n in reported if n < budget) == list(range(budget))  # every trial reported once, by its worker
    assert f"{study.best_value:.4f}" == best[0]
