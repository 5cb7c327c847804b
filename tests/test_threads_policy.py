"""Threads that fit the work and the machine (minigrad/threads.py, csrc/parallel.{h,cpp}).

- Results are bitwise identical at any team size: the kernels with reductions over a batch
  (convolution's weight and bias gradients on every path, the GEMM's split roads, batch
  norm, the optimisers) and whole short trainings at 1, 2 and 3 threads, plus `minigrad train`.
- A call's team comes from its work: small work stays on the calling thread; more work, more
  threads, up to the cap.
- The default thread count respects the affinity mask and a cgroup CPU quota (v1 and v2), and
  says where it came from; OMP_NUM_THREADS wins.
- The OpenMP wait policy is minigrad's unless the user set one, and minigrad's does not leak
  into child processes.
- While another process keeps a CPU busy, teams shrink to the CPUs left.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

import minigrad
from minigrad import _C, nn, optim
from minigrad.threads import cgroup_cpu_limit, default_thread_count

from isolated import PACKAGE_ROOT, child_environment, run_python, start_python

THREAD_COUNTS = (1, 2, 3)


@pytest.fixture
def exact_teams():
    """Every parallel call gets the whole cap: each thread count below really runs that team."""
    before, policy = minigrad.get_num_threads(), _C.thread_policy()
    minigrad.set_thread_policy(size_by_work=False, shrink_when_busy=False)
    yield
    minigrad.set_num_threads(before)
    minigrad.set_thread_policy(size_by_work=policy["size_by_work"], shrink_when_busy=policy["shrink_when_busy"])


def at_each_thread_count(run):
    results = []
    for t in THREAD_COUNTS:
        minigrad.set_num_threads(t)
        results.append(run())
    return results


def assert_bitwise_equal(results, what):
    first = results[0]
    for t, other in zip(THREAD_COUNTS[1:], results[1:]):
        for i, (a, b) in enumerate(zip(first, other)):
            assert a.dtype == b.dtype and a.shape == b.shape
            assert np.array_equal(a.view(np.uint8), b.view(np.uint8)), (
                f"{what}: output {i} differs between 1 and {t} threads (max |diff| {np.abs(a - b).max():.3g})"
            )


# ------------------------------------------------------------------------ bitwise, kernels
CONV_CASES = [  # (input, weight, stride, padding, groups): every path's reductions
    ((7, 1, 28, 28), (6, 1, 5, 5), 1, 0, 1),  # LeNet conv1: direct
    ((7, 6, 14, 14), (16, 6, 5, 5), 1, 0, 1),  # LeNet conv2
    ((9, 16, 16, 16), (16, 16, 3, 3), 1, 1, 1),  # ResNet-8 block1: chanvec
    ((9, 32, 16, 16), (32, 32, 3, 3), 2, 1, 1),  # strided
    ((9, 16, 8, 8), (32, 16, 1, 1), 1, 0, 1),  # pointwise: the image is the patch matrix
    ((33, 16, 8, 8), (64, 16, 3, 3), 1, 1, 1),  # many small images: GEMM chunks of several
    ((37, 17, 8, 8), (19, 17, 3, 3), 1, 1, 1),  # Winograd: several chunks, the last one short
    ((37, 8, 16, 16), (12, 8, 3, 3), 1, 1, 1),  # Winograd dW: chunks on the dot kernel, the last on the GEMM
    ((5, 8, 10, 10), (8, 4, 3, 3), 1, 1, 2),  # grouped
]


@pytest.mark.parametrize("algo", ["auto", "gemm", "direct", "chanvec", "winograd_f2", "winograd_f4"])
@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: "x".join(map(str, c[0])))
def test_conv_gradients_bitwise_at_any_thread_count(exact_teams, case, algo):
    xs, ws, stride, pad, groups = case
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(xs).astype(np.float32), rng.standard_normal(ws).astype(np.float32)
    ys = _C.conv2d_output_shape(xs, ws, (stride, stride), (pad, pad), (1, 1), groups)
    gy = rng.standard_normal(ys).astype(np.float32)

    def run():
        gx, gw, gb = np.empty_like(x), np.empty_like(w), np.empty(ws[0], np.float32)
        _C.conv2d_backward(x, w, gy, gx, gw, gb, stride=(stride,) * 2, padding=(pad,) * 2, groups=groups, algo=algo)
        y = np.empty(ys, np.float32)
        _C.conv2d_forward(x, w, gb, y, (stride,) * 2, (pad,) * 2, groups=groups, algo=algo)
        return gx, gw, gb, y

    results = at_each_thread_count(run)
    assert_bitwise_equal(results, f"conv {case} {algo}")
    # and the gradient is right, not only stable: against float64 sums
    gw64 = np.zeros(ws)
    if groups == 1 and stride == 1 and pad == 0 and ws[2] == 1:
        gw64 = np.einsum("nohw,nihw->oi", gy.astype(np.float64), x.astype(np.float64))[:, :, None, None]
        np.testing.assert_allclose(results[0][1], gw64, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(results[0][2], gy.astype(np.float64).sum(axis=(0, 2, 3)), rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize(
    "m,n,k,ta,tb",
    [
        (6, 25, 20000, False, True),  # tall k, one tile: the k-split / dot roads
        (64, 64, 4096, True, False),
        (200, 180, 150, False, False),  # the thread grid
        (512, 512, 64, False, False),
    ],
)
def test_gemm_bitwise_at_any_thread_count(exact_teams, m, n, k, ta, tb):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((1, k, m) if ta else (1, m, k)).astype(np.float32)
    b = rng.standard_normal((1, n, k) if tb else (1, k, n)).astype(np.float32)

    def run():
        c = np.empty((1, m, n), np.float32)
        _C.gemm(a, b, c, trans_a=ta, trans_b=tb)
        return (c,)

    assert_bitwise_equal(at_each_thread_count(run), f"gemm {m}x{n}x{k}")


def test_batchnorm_and_optimiser_bitwise_at_any_thread_count(exact_teams):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((64, 32, 300)).astype(np.float32)
    gy = rng.standard_normal(x.shape).astype(np.float32)
    g, b = rng.standard_normal(32).astype(np.float32), rng.standard_normal(32).astype(np.float32)

    def run():
        y, mean, invstd = np.empty_like(x), np.empty(32, np.float32), np.empty(32, np.float32)
        rm, rv = np.zeros(32, np.float32), np.ones(32, np.float32)
        _C.batch_norm_forward_train(x, g, b, rm, rv, y, mean, invstd, 0.1, 1e-5)
        gx, gg, gb = np.empty_like(x), np.empty(32, np.float32), np.empty(32, np.float32)
        _C.batch_norm_backward(x, gy, g, b, mean, invstd, gx, gg, gb, True)
        params = [x[:3].reshape(-1).copy(), g.copy()]
        grads = [gy[:3].reshape(-1).copy(), gg.copy()]
        state = [[np.full_like(p, 0.1) for p in params] for _ in range(2)]
        _C.adam_step(
            params, grads, state[0], state[1], None, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01,
            step_size=1e-3, bias_correction2_sqrt=0.5, decoupled_weight_decay=True, amsgrad=False, maximize=False,
        )  # fmt: skip
        return y, mean, invstd, rm, rv, gx, gg, gb, *params, *state[0], *state[1]

    assert_bitwise_equal(at_each_thread_count(run), "batch norm + adam")


# ----------------------------------------------------------------------- bitwise, training
def _lenet():
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 10),
    )  # fmt: skip


def _resnet_ish():
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.Conv2d(32, 32, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10),
    )  # fmt: skip


def _mlp():
    return nn.Sequential(
        nn.Flatten(), nn.Linear(3 * 16 * 16, 256), nn.BatchNorm1d(256), nn.ReLU(), nn.Dropout(0.3), nn.Linear(256, 10)
    )


@pytest.mark.parametrize(
    "build,shape,make_opt",
    [
        (_lenet, (1, 28, 28), lambda p: optim.SGD(p, lr=0.05, momentum=0.9)),
        (_resnet_ish, (3, 16, 16), lambda p: optim.Adam(p, lr=1e-3)),
        (_mlp, (3, 16, 16), lambda p: optim.RMSprop(p, lr=1e-3)),
    ],
    ids=["lenet5-sgd", "convbn-adam", "mlp-bn-dropout-rmsprop"],
)
def test_short_training_bitwise_at_1_2_3_threads(exact_teams, build, shape, make_opt):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 32, *shape)).astype(np.float32)
    y = rng.integers(0, 10, (4, 32))

    def run():
        minigrad.manual_seed(0)
        model = build()
        opt = make_opt(model.parameters())
        losses = []
        for xb, yb in zip(x, y):
            loss = nn.functional.cross_entropy(model(minigrad.tensor(xb)), minigrad.tensor(yb))
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(np.array([loss.item()], np.float64))
        return (*losses, *(p.numpy().copy() for p in model.parameters()))

    assert_bitwise_equal(at_each_thread_count(run), build.__name__)


def test_minigrad_train_gives_the_same_model_at_1_and_3_threads(tmp_path):
    """The whole CLI run: same seed, same losses and weights bit for bit, whatever --threads says."""
    runs = []
    for threads in (1, 3):
        out = tmp_path / f"t{threads}"
        done = run_python(
            "import sys; from minigrad.cli import main; sys.exit(main(sys.argv[1:]))",
            "train", "--dataset", "shapes", "--epochs", "2", "--train-size", "512", "--threads", str(threads),
            "--out", str(out), timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        saved = minigrad.io.load(str(out / "last.safetensors"))
        record = json.loads(bytes(np.asarray(saved.pop("checkpoint.json"))).decode())
        losses = [(r["train_loss"], r["val_loss"], r["val_accuracy"]) for r in record["history"]["rows"]]
        accuracy = [line for line in done.stdout.splitlines() if line.startswith("test accuracy")]
        runs.append((accuracy, losses, {k: np.asarray(v).tobytes() for k, v in saved.items()}))
    (acc1, losses1, tensors1), (acc3, losses3, tensors3) = runs
    assert acc1 and acc1 == acc3
    assert len(losses1) == 2 and losses1 == losses3
    assert tensors1.keys() == tensors3.keys() and any(k.startswith("model/") for k in tensors1)
    for key in tensors1:
        assert tensors1[key] == tensors3[key], f"{key} differs between 1 and 3 threads"


# ----------------------------------------------------------------------------- team sizes
def test_team_grows_with_the_work_and_stops_at_the_cap():
    """The model alone (shrinking off, so another process on the machine cannot change it)."""
    before, policy = minigrad.get_num_threads(), _C.thread_policy()
    try:
        minigrad.set_num_threads(16)
        minigrad.set_thread_policy(size_by_work=True, shrink_when_busy=False)
        for family, x in minigrad.thread_info()["crossover"].items():
            assert _C.team_for(family, 6 * 28 * 28 if family == "eltwise" else 1) == 1
            assert _C.team_for(family, x - 1) == 1, family
            # the largest t with t (t - 1) <= work / grain = 2 work / crossover
            assert [_C.team_for(family, x * f) for f in (1, 3, 6, 120, 10**6)] == [2, 3, 4, 16, 16], family
        minigrad.set_thread_policy(size_by_work=False)
        assert _C.team_for("eltwise", 10) == 16
    finally:
        minigrad.set_num_threads(before)
        minigrad.set_thread_policy(size_by_work=policy["size_by_work"], shrink_when_busy=policy["shrink_when_busy"])


def test_a_6x28x28_relu_and_a_small_optimiser_step_do_not_wake_16_threads():
    before = minigrad.get_num_threads()
    try:
        minigrad.set_num_threads(16)  # the shrinking can only lower these
        assert _C.team_for("eltwise", 6 * 28 * 28) == 1
        assert _C.team_for("optim", 61706) <= 3  # LeNet-5's 10 tensors
    finally:
        minigrad.set_num_threads(before)
    with pytest.raises(ValueError, match="unknown kernel family 'relu'"):
        _C.team_for("relu", 10)


def test_set_num_threads_refuses_non_counts():
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="positive whole count"):
            minigrad.set_num_threads(bad)


# ---------------------------------------------------------------------- the default count
def test_default_count_is_the_affinity_mask_capped_by_the_quota_rounded_up():
    assert default_thread_count({0, 1, 2, 3}, None)[0] == 4
    assert default_thread_count({0, 1, 2, 3}, 8.0)[0] == 4
    n, why = default_thread_count({0, 1, 2, 3}, 1.5)
    assert n == 2 and "cgroup CPU quota (1.5 CPUs; affinity allows 4)" == why
    assert default_thread_count({5}, 0.2)[0] == 1
    assert "affinity" in default_thread_count({0, 1}, None)[1]


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_cgroup_v2_quota_takes_the_tightest_level(tmp_path):
    _write(tmp_path / "proc_cgroup", "0::/box/job\n")
    _write(tmp_path / "fs/cpu.max", "max 100000\n")
    _write(tmp_path / "fs/box/cpu.max", "300000 100000\n")
    _write(tmp_path / "fs/box/job/cpu.max", "max 100000\n")
    assert cgroup_cpu_limit(str(tmp_path / "proc_cgroup"), str(tmp_path / "fs")) == 3.0
    _write(tmp_path / "fs/box/job/cpu.max", "150000 100000\n")
    assert cgroup_cpu_limit(str(tmp_path / "proc_cgroup"), str(tmp_path / "fs")) == 1.5


def test_cgroup_v1_quota_and_no_quota(tmp_path):
    _write(tmp_path / "proc_cgroup", "4:memory:/x\n3:cpu,cpuacct:/docker/abc\n0::/\n")
    _write(tmp_path / "fs/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "200000\n")
    _write(tmp_path / "fs/cpu,cpuacct/docker/abc/cpu.cfs_period_us", "100000\n")
    _write(tmp_path / "fs/cpu,cpuacct/cpu.cfs_quota_us", "-1\n")
    assert cgroup_cpu_limit(str(tmp_path / "proc_cgroup"), str(tmp_path / "fs")) == 2.0
    _write(tmp_path / "fs/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "-1\n")
    assert cgroup_cpu_limit(str(tmp_path / "proc_cgroup"), str(tmp_path / "fs")) is None
    assert cgroup_cpu_limit(str(tmp_path / "missing"), str(tmp_path / "fs")) is None


REPORT = "import json, minigrad; print(json.dumps(minigrad.thread_info()))"


def _run_child(args, pre_exec=None, **env):
    """``python args`` in a fresh interpreter with only the OpenMP variables given here set."""
    full = {**child_environment(), **env}
    for k in ("OMP_NUM_THREADS", "GOMP_SPINCOUNT", "OMP_WAIT_POLICY"):
        if k not in env:
            full.pop(k, None)
    done = subprocess.run(
        [sys.executable, *args], env=full, capture_output=True, text=True, timeout=120, preexec_fn=pre_exec,
        cwd=PACKAGE_ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done


def _child_info(pre_exec=None, **env):
    """thread_info() of a fresh interpreter, and whether GOMP_SPINCOUNT is left in its environment."""
    code = REPORT + "; import os; print(os.environ.get('GOMP_SPINCOUNT'))"
    info_line, env_line = _run_child(["-c", code], pre_exec, **env).stdout.strip().splitlines()[-2:]
    return json.loads(info_line), env_line


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no affinity masks on this OS")
def test_a_process_pinned_to_one_cpu_defaults_to_one_thread():
    cpu = min(os.sched_getaffinity(0))
    info, _ = _child_info(pre_exec=lambda: os.sched_setaffinity(0, {cpu}))
    assert info["threads"] == 1
    assert info["source"].startswith("CPU affinity mask (1 of")


def test_omp_num_threads_wins_and_is_named():
    info, _ = _child_info(OMP_NUM_THREADS="3")
    assert info["threads"] == 3 and info["source"] == "OMP_NUM_THREADS=3"


def test_minigrad_sets_a_short_spin_unless_the_user_chose_and_does_not_leak_it():
    info, leaked = _child_info()
    assert info["wait_policy"].startswith("GOMP_SPINCOUNT=") and "minigrad's default" in info["wait_policy"]
    assert leaked == "None"  # child processes see the user's environment
    info, _ = _child_info(OMP_WAIT_POLICY="passive")
    assert info["wait_policy"] == "from the environment: OMP_WAIT_POLICY=passive"


# --------------------------------------------------------------------- shrinking when busy
def test_proc_stat_parsing_counts_busy_and_idle_over_the_allowed_cpus():
    text = (
        "cpu  100 0 50 1000 10 0 0 0 0 0\n"
        "cpu0 10 1 5 100 4 1 2 3 0 0\n"  # busy 10+1+5+1+2+3 = 22, idle 100+4
        "cpu1 20 0 0 80 0 0 0 0 0 0\n"
        "cpu2 7 0 0 3\n"  # an old kernel's four fields
        "intr 5 6\nctxt 9\n"
    )
    assert _C.parse_proc_stat(text, [0]) == (True, 22.0, 126.0)
    assert _C.parse_proc_stat(text, [1, 2]) == (True, 27.0, 110.0)
    assert _C.parse_proc_stat(text) == (True, 49.0, 236.0)
    assert _C.parse_proc_stat(text, [5])[0] is False
    assert _C.parse_proc_stat("garbage\n\n cpu", None)[0] is False
    with pytest.raises(ValueError, match="CPU 4096 outside"):
        _C.parse_proc_stat(text, [4096])


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")
def test_teams_shrink_while_another_process_keeps_a_cpu_busy():
    cpus = len(os.sched_getaffinity(0))
    before = minigrad.get_num_threads()
    hog = start_python("-c", "print('spinning', flush=True)\nwhile True: pass")
    try:
        assert hog.stdout.readline().startswith(b"spinning")
        minigrad.set_num_threads(cpus)
        info = {}
        for _ in range(20):  # samples come at most every 200 ms; the first is a baseline
            time.sleep(0.25)
            _C.team_for("conv", 10**12)
            info = minigrad.thread_info()
            if info["busy_cap"]:
                break
        assert info["others_busy"] >= 0.5, info
        assert 1 <= info["busy_cap"] <= cpus - 1, info
        assert _C.team_for("conv", 10**12) == info["busy_cap"]
    finally:
        hog.kill()
        hog.wait()
        minigrad.set_num_threads(before)


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no affinity masks on this OS")
def test_minigrad_info_shows_the_count_and_where_it_came_from():
    cpu = min(os.sched_getaffinity(0))
    done = _run_child(["-m", "minigrad.cli", "info"], pre_exec=lambda: os.sched_setaffinity(0, {cpu}))
    lines = done.stdout.splitlines()
    assert lines[1].startswith("threads: 1 (from CPU affinity mask (1 of "), lines[:3]
    assert (
        lines[2]
        == f"OpenMP wait policy: GOMP_SPINCOUNT={minigrad.threads.SPIN_COUNT} (minigrad's default: spin briefly, then sleep)"
    )
    assert f"eltwise {minigrad.thread_info()['crossover']['eltwise']:,}," in done.stdout


def test_an_unreadable_omp_num_threads_falls_back_to_the_default_and_says_so():
    info, _ = _child_info(OMP_NUM_THREADS="lots")
    assert info["threads"] == len(os.sched_getaffinity(0))
    assert info["source"].endswith("OMP_NUM_THREADS='lots' is not a positive count and was ignored")
    info, _ = _child_info(OMP_NUM_THREADS="1,2")  # one count per nesting level: the first is ours
    assert info["threads"] == 1 and info["source"] == "OMP_NUM_THREADS=1,2"


def test_odd_cgroup_files_mean_no_quota(tmp_path):
    _write(tmp_path / "proc_cgroup", "0::/box\n")
    for text in ("inf 100000\n", "nan 100000\n", "0 100000\n", "-5 100000\n", "100000 0\n", "garbage\n", ""):
        _write(tmp_path / "fs/box/cpu.max", text)
        assert cgroup_cpu_limit(str(tmp_path / "proc_cgroup"), str(tmp_path / "fs")) is None, text


def test_set_thread_policy_takes_only_booleans():
    before = _C.thread_policy()
    for bad in ("no", 0, 1, [True]):
        with pytest.raises(TypeError, match="must be True, False or None"):
            minigrad.set_thread_policy(shrink_when_busy=bad)
    assert _C.thread_policy() == before
