"""Batch-norm kernels (_C.batch_norm_*) against their scalar twins (_C.ref.batch_norm_*) on
awkward shapes, on every ISA path, at 1 and several threads, and their argument checks."""

import os
import textwrap
import threading

import numpy as np
import pytest

import minigrad as mg
from minigrad import _C

from isolated import run_python

# (N, C, S): S == 1 is the (N, C) path; S > 8192 splits rows into pieces; N * S large with
# C = 1 or 3 runs the split schedule on several threads.
SHAPES = [
    (2, 1, 1),
    (1, 3, 7),
    (7, 13, 31),
    (2, 65, 1),
    (257, 3, 1),
    (130, 2, 63),
    (3, 2, 9000),
    (1, 1, 2),
    (5, 1, 8199),
    (31, 127, 2),
]
TOL = {np.float32: dict(rtol=2e-5, atol=2e-5), np.float64: dict(rtol=1e-11, atol=1e-11)}


def run_all(mod, x, dy, weight, bias, training, relu, momentum=0.1, eps=1e-5, want_dx=True):
    """Forward (train or eval) and backward through `mod`; returns every array written."""
    n, c, s = x.shape
    rm = np.linspace(-1, 1, c).astype(x.dtype)
    rv = np.linspace(0.5, 2, c).astype(x.dtype)
    y = np.full_like(x, np.nan)
    mean, invstd = np.empty(c, x.dtype), np.empty(c, x.dtype)
    if training:
        mod.batch_norm_forward_train(x, weight, bias, rm, rv, y, mean, invstd, momentum, eps, relu)
    else:
        mod.batch_norm_forward_eval(x, weight, bias, rm, rv, y, mean, invstd, eps, relu)
    dx = np.full_like(x, np.nan) if want_dx else None
    dw = np.full(c, np.nan, x.dtype) if weight is not None else None
    db = np.full(c, np.nan, x.dtype) if bias is not None else None
    mod.batch_norm_backward(x, dy, weight, bias, mean, invstd, dx, dw, db, training, relu)
    return {
        k: v for k, v in dict(y=y, rm=rm, rv=rv, mean=mean, invstd=invstd, dx=dx, dw=dw, db=db).items() if v is not None
    }


def inputs(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    c = shape[1]
    x = (rng.standard_normal(shape) * 2 + 3).astype(dtype)  # an offset mean tests stability
    dy = rng.standard_normal(shape).astype(dtype)
    return x, dy, rng.standard_normal(c).astype(dtype), rng.standard_normal(c).astype(dtype)


def assert_matches_reference(shape, dtype, training, relu, affine, want_dx=True):
    x, dy, w, b = inputs(shape, dtype)
    w, b = (w, b) if affine else (None, None)
    fast = run_all(_C, x, dy, w, b, training, relu, want_dx=want_dx)
    ref = run_all(_C.ref, x, dy, w, b, training, relu, want_dx=want_dx)
    for name in ref:
        scale = max(1.0, float(np.abs(ref[name]).max()))
        np.testing.assert_allclose(
            fast[name] / scale,
            ref[name] / scale,
            **TOL[dtype],
            err_msg=f"{name} differs from the reference for {shape}",
        )


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_reference(shape, dtype):
    for training in (True, False):
        for relu, affine in ((False, True), (True, True), (False, False), (True, False)):
            assert_matches_reference(shape, dtype, training, relu, affine)


def test_backward_without_input_gradient_still_gives_parameter_gradients():
    assert_matches_reference((4, 5, 6), np.float32, True, True, True, want_dx=False)


def test_hand_computed_values():
    # one channel, values 1, 2, 3, 6: mean 3, biased var 3.5, unbiased 14/3
    x = np.array([[[1.0, 2.0]], [[3.0, 6.0]]])
    out = run_all(_C, x, np.ones_like(x), np.array([2.0]), np.array([0.5]), True, False, momentum=1.0, eps=0.0)
    np.testing.assert_allclose(out["mean"], [3.0])
    np.testing.assert_allclose(out["invstd"], [1 / np.sqrt(3.5)])
    np.testing.assert_allclose(out["rm"], [3.0])
    np.testing.assert_allclose(out["rv"], [14 / 3])
    np.testing.assert_allclose(out["y"].ravel(), 2 * (np.array([1, 2, 3, 6]) - 3) / np.sqrt(3.5) + 0.5)
    np.testing.assert_allclose(out["db"], [4.0])  # sum of dy
    np.testing.assert_allclose(out["dw"], [0.0], atol=1e-12)  # sum of x_hat
    np.testing.assert_allclose(out["dx"], 0.0, atol=1e-12)  # a constant dy does not move the output


def test_statistics_stay_accurate_far_from_zero():
    """A large mean with a small spread: naive sum-of-squares in float32 would lose the variance."""
    rng = np.random.default_rng(5)
    x = (1000 + rng.standard_normal((64, 2, 300))).astype(np.float32)
    out = run_all(_C, x, x, None, None, True, False)
    exact = 1 / np.sqrt(x.astype(np.float64).var(axis=(0, 2)) + 1e-5)
    np.testing.assert_allclose(out["invstd"], exact, rtol=1e-4)


@pytest.mark.parametrize("shape", [(8, 3, 4096), (8, 16, 1024), (4, 1, 40000), (4096, 40, 1)])
def test_one_thread_and_many_threads_give_identical_bits(shape):
    x, dy, w, b = inputs(shape, np.float32, seed=7)
    before = mg.get_num_threads()
    try:
        results = []
        for threads in (1, 2, 3, 4):
            mg.set_num_threads(threads)
            results.append(run_all(_C, x, dy, w, b, True, True))
    finally:
        mg.set_num_threads(before)
    for other in results[1:]:
        for name, value in results[0].items():
            np.testing.assert_array_equal(other[name], value, err_msg=f"{name} depends on the thread count")


def test_concurrent_calls_from_python_threads():
    x, dy, w, b = inputs((16, 8, 256), np.float32, seed=9)
    expected = run_all(_C, x, dy, w, b, True, False)
    failures = []

    def work():
        for _ in range(5):
            got = run_all(_C, x, dy, w, b, True, False)
            if any(not np.array_equal(got[k], expected[k]) for k in expected):
                failures.append("mismatch")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures


ISA_SCRIPT = textwrap.dedent("""
    import numpy as np, minigrad as mg, sys
    sys.path.insert(0, {here!r})
    from test_batchnorm_kernels import assert_matches_reference
    assert mg.backend_info()["implementations"]["batch_norm"] == "batchnorm_spans_{isa}"
    for shape in [(2, 1, 1), (7, 13, 31), (2, 65, 1), (130, 2, 63), (3, 2, 9000)]:
        for dtype in (np.float32, np.float64):
            for training in (True, False):
                assert_matches_reference(shape, dtype, training, True, True)
                assert_matches_reference(shape, dtype, training, False, False)
    print("ok")
""")


@pytest.mark.parametrize("isa", ["generic", "avx2", "avx512"])
def test_each_isa_path_matches_reference(isa):
    order = ["generic", "avx2", "avx512"]
    if order.index(isa) > order.index(mg.backend_info()["cpu_isa"]):
        pytest.skip(f"this CPU has no {isa} (best: {mg.backend_info()['cpu_isa']})")
    here = os.path.dirname(os.path.abspath(__file__))
    done = run_python(ISA_SCRIPT.format(here=here, isa=isa), MINIGRAD_ISA=isa)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


# ---- argument checks: every error raised before the kernel writes anything
def fresh(shape=(4, 3, 5), dtype=np.float32):
    x = np.ones(shape, dtype)
    c = shape[1]
    return dict(
        x=x,
        weight=np.ones(c, dtype),
        bias=np.zeros(c, dtype),
        running_mean=np.full(c, 7, dtype),
        running_var=np.full(c, 7, dtype),
        out=np.full(shape, 7, dtype),
        save_mean=np.full(c, 7, dtype),
        save_invstd=np.full(c, 7, dtype),
    )


BAD_FORWARD = {
    "x 2-D": (dict(x=np.ones((4, 3), np.float32)), ValueError, "x must have 3 dimensions"),
    "x int": (dict(x=np.ones((4, 3, 5), np.int32)), TypeError, "x must be float32"),
    "x strided": (dict(x=np.ones((4, 3, 10), np.float32)[:, :, ::2]), ValueError, "C-contiguous"),
    "weight float64": (dict(weight=np.ones(3)), TypeError, "weight must be float32"),
    "weight wrong size": (dict(weight=np.ones(4, np.float32)), ValueError, "weight has shape"),
    "out wrong shape": (dict(out=np.full((4, 3, 6), 7, np.float32)), ValueError, "out has shape"),
    "running_var read-only": (dict(running_var=np.broadcast_to(np.float32(7), (3,))), ValueError, "running_var"),
    "single value per channel": (
        dict(x=np.ones((1, 3, 1), np.float32), out=np.full((1, 3, 1), 7, np.float32)),
        ValueError,
        "more than 1 value per channel",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_FORWARD))
def test_bad_forward_arguments_raise_before_writing(case):
    change, error, words = BAD_FORWARD[case]
    args = {**fresh(), **change}
    with pytest.raises(error, match=words):
        _C.batch_norm_forward_train(**args, momentum=0.1, eps=1e-5)
    for name in ("running_mean", "save_mean", "save_invstd", "out"):
        assert (args[name] == 7).all(), f"{name} was written before the error"


def test_output_aliasing_input_is_refused():
    args = fresh()
    args["out"] = args["x"]
    with pytest.raises(ValueError, match="must not share memory"):
        _C.batch_norm_forward_train(**args, momentum=0.1, eps=1e-5)


def test_bad_backward_arguments_raise_before_writing():
    x = np.ones((4, 3, 5), np.float32)
    dx, dw = np.full_like(x, 7), np.full(3, 7, np.float32)
    with pytest.raises(ValueError, match="grad_out has shape"):
        _C.batch_norm_backward(
            x,
            np.ones((4, 3, 6), np.float32),
            None,
            None,
            np.zeros(3, np.float32),
            np.ones(3, np.float32),
            dx,
            dw,
            None,
            True,
        )
    with pytest.raises(TypeError, match="invstd must be float32"):
        _C.batch_norm_backward(x, x.copy(), None, None, np.zeros(3, np.float32), np.ones(3), dx, dw, None, True)
    assert (dx == 7).all() and (dw == 7).all()
