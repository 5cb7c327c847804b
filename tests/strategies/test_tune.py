"""Optuna search: reproducible with a seed in memory; two processes share a SQLite study."""

import textwrap
from pathlib import Path

import numpy as np
import pytest

from isolated import start_python

optuna = pytest.importorskip("optuna", reason="hyper-parameter search needs optuna (pip install '.[tune]')")

from minigrad import models, optim  # noqa: E402
from minigrad.data import DataLoader, TensorDataset  # noqa: E402
from minigrad.nn import functional as F  # noqa: E402
from minigrad.strategies.tune import Choice, Experiment, LogUniform, search  # noqa: E402


def _data():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 60)
    x = rng.standard_normal((60, 5)).astype(np.float32) + np.eye(3, 5, dtype=np.float32)[y] * 2
    return DataLoader(TensorDataset(x[:40], y[:40]), 10, shuffle=True), DataLoader(TensorDataset(x[40:], y[40:]), 20)


def _build(config):
    train, val = _data()
    model = models.mlp([5, config["width"], 3])
    return Experiment(model, optim.SGD(model.parameters(), lr=config["lr"]), F.cross_entropy, train, val, epochs=2)


SPACE = {"lr": LogUniform(1e-3, 1.0), "width": Choice([4, 8])}


def test_search_is_reproducible_with_a_seed_and_in_memory_storage():
    first = search(_build, SPACE, n_trials=3, seed=7)
    second = search(_build, SPACE, n_trials=3, seed=7)

    def rows(r):
        return [(t.params, t.value, t.intermediate_values) for t in r.trials]

    assert rows(first) == rows(second)
    assert len(first.trials[0].intermediate_values) == 2  # one validation score per epoch
    assert first.best_value == max(t.value for t in first.trials)
    assert set(first.best_config) == {"lr", "width"}


def test_pruned_trials_stop_early():
    class AlwaysPrune(optuna.pruners.BasePruner):
        def prune(self, study, trial):
            return trial.number > 0

    result = search(_build, SPACE, n_trials=3, seed=0, pruner=AlwaysPrune())
    states = [t.state for t in result.trials]
    assert states[0] == optuna.trial.TrialState.COMPLETE
    assert states[1:] == [optuna.trial.TrialState.PRUNED] * 2
    assert all(len(t.intermediate_values) == 1 for t in result.trials[1:])  # stopped after epoch 1


WORKER = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    from test_tune import SPACE, _build
    from minigrad.strategies.tune import search
    search(_build, SPACE, n_trials=2, storage=sys.argv[1], study_name="shared", seed=int(sys.argv[2]))
""")


def test_two_processes_share_a_sqlite_study(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    script = tmp_path / "worker.py"
    script.write_text(WORKER.format(tests=str(Path(__file__).parent)))
    workers = [start_python(str(script), storage, str(seed), OMP_NUM_THREADS="1") for seed in (1, 2)]
    outputs = [w.communicate(timeout=120)[0].decode() for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    study = optuna.load_study(study_name="shared", storage=storage)
    assert len(study.trials) == 4
    assert len({t.user_attrs["worker"] for t in study.trials}) == 2
    assert {t.number for t in study.trials} == {0, 1, 2, 3}


def test_bad_space_entry_is_reported():
    with pytest.raises(TypeError, match="search space entry 'lr'"):
        search(_build, {"lr": (1e-3, 1.0)}, n_trials=1)


def test_tune_command_prints_the_best_configuration(capsys):
    from minigrad.cli import main

    assert (
        main(["tune", "--model", "mlp", "--dataset", "shapes:200", "--trials", "2", "--epochs", "1", "--seed", "0"])
        == 0
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-2].startswith("best configuration: --lr ")
    assert lines[-1].startswith("best validation accuracy: ") and 0 <= float(lines[-1].split()[-1]) <= 1


# ---------------------------------------------------------------- joining a study safely
def test_joining_a_study_of_the_other_direction_fails_clearly(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    optuna.create_study(storage=storage, study_name="losses", direction="minimize")
    with pytest.raises(ValueError, match="'losses'.*minimize.*maximize"):
        search(_build, SPACE, n_trials=1, storage=storage, study_name="losses")  # val_accuracy: maximize
    assert optuna.load_study(study_name="losses", storage=storage).trials == []  # no trial ran the wrong way


def test_the_tune_command_refuses_a_study_of_the_other_direction(tmp_path):
    from isolated import run_python

    storage = f"sqlite:///{tmp_path / 'study.db'}"
    optuna.create_study(storage=storage, study_name="losses", direction="minimize")
    result = run_python(
        "minigrad.cli",
        "tune",
        "--dataset",
        "shapes:120",
        "--trials",
        "1",
        "--epochs",
        "1",
        "--storage",
        storage,
        "--study-name",
        "losses",
        module=True,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("minigrad: error: ") and "minimize" in result.stderr


HANGING_WORKER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {tests!r})
    from test_tune import SPACE
    from minigrad.strategies.tune import search

    def build(config):
        open(sys.argv[2], "w").close()   # the trial is running: the test may kill us now
        time.sleep(600)

    search(build, SPACE, n_trials=1, storage=sys.argv[1], study_name="shared", seed=1, heartbeat_interval=1)
""")


def test_a_killed_workers_trial_is_marked_failed(tmp_path):
    import signal
    import time

    storage = f"sqlite:///{tmp_path / 'study.db'}"
    script, started = tmp_path / "worker.py", tmp_path / "started"
    script.write_text(HANGING_WORKER.format(tests=str(Path(__file__).parent)))
    worker = start_python(str(script), storage, str(started), OMP_NUM_THREADS="1")
    try:
        deadline = time.monotonic() + 120
        while not started.exists():
            assert worker.poll() is None, worker.communicate()[0].decode()
            assert time.monotonic() < deadline, "the worker never started its trial"
            time.sleep(0.1)
        time.sleep(1.5)  # at least one heartbeat recorded
    finally:
        worker.send_signal(signal.SIGKILL)  # no chance to clean up, as with a crash or an OOM kill
        worker.communicate(timeout=30)
    study = optuna.load_study(study_name="shared", storage=storage)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.RUNNING]  # what the kill left behind
    time.sleep(2.5)  # past the grace period: the dead worker's heartbeat is stale
    search(
        _build, SPACE, n_trials=1, storage=storage, study_name="shared", seed=2, heartbeat_interval=1, grace_period=2
    )
    states = [t.state for t in optuna.load_study(study_name="shared", storage=storage).trials]
    assert states == [optuna.trial.TrialState.FAIL, optuna.trial.TrialState.COMPLETE]
