"""Batch-norm kernels (_C.batch_norm_*) against their scalar twins (_C.ref.batch_norm_*) on
awkward shapes, on every ISA path, at 1 and several threads, and their argument checks."""

import os
import textwrap
import threading

import numpy as np
import pytest

import minigrad as mg
from minigrad import _C
from minigrad.dtypes import bfloat16

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
# bfloat16 comes from ml_dtypes (the test extra installs it; a bare wheel install may not have it)
BF16 = np.dtype(bfloat16) if bfloat16 is not None else None
needs_bfloat16 = pytest.mark.skipif(BF16 is None, reason="bfloat16 needs ml_dtypes")


def run_all(mod, x, dy, weight, bias, training, relu, momentum=0.1, eps=1e-5, want_dx=True, residual=None):
    """Forward (train or eval, with ``residual`` added before the ReLU where given) and
    backward through `mod`; returns every array written. bfloat16 x and dy go in as their
    uint16 bits with float32 per-channel arrays (autocast's batch norm); y and dx come back as
    float32 values of their bfloat16 results."""
    n, c, s = x.shape
    low = BF16 is not None and x.dtype == BF16
    stats = np.float32 if low else x.dtype
    bits = (lambda a: a.view(np.uint16)) if low else (lambda a: a)
    rm = np.linspace(-1, 1, c).astype(stats)
    rv = np.linspace(0.5, 2, c).astype(stats)
    y = np.full_like(x, np.nan)
    mean, invstd = np.empty(c, stats), np.empty(c, stats)
    r = None if residual is None else bits(residual)
    if training:
        mod.batch_norm_forward_train(bits(x), weight, bias, rm, rv, bits(y), mean, invstd, momentum, eps, relu, r)
    else:
        mod.batch_norm_forward_eval(bits(x), weight, bias, rm, rv, bits(y), mean, invstd, eps, relu, r)
    dx = np.full_like(x, np.nan) if want_dx else None
    dw = np.full(c, np.nan, stats) if weight is not None else None
    db = np.full(c, np.nan, stats) if bias is not None else None
    mod.batch_norm_backward(
        bits(x), bits(dy), weight, bias, mean, invstd, None if dx is None else bits(dx), dw, db, training, relu
    )
    y, dx = y.astype(np.float32) if low else y, dx.astype(np.float32) if low and dx is not None else dx
    return {
        k: v for k, v in dict(y=y, rm=rm, rv=rv, mean=mean, invstd=invstd, dx=dx, dw=dw, db=db).items() if v is not None
    }


def inputs(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    c = shape[1]
    stats = np.float32 if BF16 is not None and dtype == BF16 else dtype
    x = (rng.standard_normal(shape) * 2 + 3).astype(np.float32).astype(dtype)  # an offset mean tests stability
    dy = rng.standard_normal(shape).astype(np.float32).astype(dtype)
    return x, dy, rng.standard_normal(c).astype(stats), rng.standard_normal(c).astype(stats)


def assert_matches_reference(shape, dtype, training, relu, affine, want_dx=True, residual=False):
    x, dy, w, b = inputs(shape, dtype)
    w, b = (w, b) if affine else (None, None)
    r = (dy[::-1].copy() - 1).astype(dtype) if residual else None  # a skip path of x's shape
    fast = run_all(_C, x, dy, w, b, training, relu, want_dx=want_dx, residual=r)
    ref = run_all(_C.ref, x, dy, w, b, training, relu, want_dx=want_dx, residual=r)
    for name in ref:
        scale = max(1.0, float(np.abs(ref[name]).max()))
        # bfloat16 y and dx: both round a float32-exact value once, but the kernels compute it
        # in float32 and the reference in double, so a value near a rounding boundary may land
        # one bfloat16 step (2**-8 relative) apart; the float32 statistics as for float32
        tol = (
            dict(rtol=2**-7, atol=2**-7)
            if dtype == BF16 and name in ("y", "dx")
            else TOL[np.dtype(dtype).type if dtype != BF16 else np.float32]
        )
        np.testing.assert_allclose(
            fast[name] / scale,
            ref[name] / scale,
            **tol,
            err_msg=f"{name} differs from the reference for {shape}",
        )


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(
    "dtype", [np.float32, np.float64, pytest.param(BF16, marks=needs_bfloat16)], ids=["float32", "float64", "bfloat16"]
)
def test_matches_reference(shape, dtype):
    for training in (True, False):
        for relu, affine in ((False, True), (True, True), (False, False), (True, False)):
            assert_matches_reference(shape, dtype, training, relu, affine)
        for relu in (True, False):  # a residual block's join: relu(bn(x) + r)
            assert_matches_reference(shape, dtype, training, relu, True, residual=True)


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


@needs_bfloat16
def test_bfloat16_activations_round_the_float32_result_once():
    """Hand-checked: x = 1, 2, 3, 6 (exact in bfloat16), gamma 2, beta 0.5: y is the float32
    batch norm of those values rounded to bfloat16 once, the statistics float32."""
    x = np.array([[[1.0, 2.0]], [[3.0, 6.0]]], np.float32).astype(BF16)
    out = run_all(
        _C, x, np.ones_like(x), np.array([2.0], np.float32), np.array([0.5], np.float32), True, False, eps=0.0
    )
    np.testing.assert_allclose(out["mean"], [3.0])
    np.testing.assert_allclose(out["invstd"], [1 / np.sqrt(3.5)], rtol=1e-7)
    y32 = (2 * (np.array([1, 2, 3, 6], np.float32) - 3) * np.float32(1 / np.sqrt(3.5)) + 0.5).astype(np.float32)
    np.testing.assert_array_equal(out["y"].ravel(), y32.astype(BF16).astype(np.float32))
    assert out["y"].ravel()[1] != y32[1]  # 0.5 - 2/sqrt(3.5) = -0.569...: rounding did happen
    np.testing.assert_allclose(out["db"], [4.0])
    np.testing.assert_allclose(out["dx"], 0.0, atol=1e-6)


def test_statistics_stay_accurate_far_from_zero():
    """A large mean with a small spread: naive sum-of-squares in float32 would lose the variance."""
    rng = np.random.default_rng(5)
    x = (1000 + rng.standard_normal((64, 2, 300))).astype(np.float32)
    out = run_all(_C, x, x, None, None, True, False)
    exact = 1 / np.sqrt(x.astype(np.float64).var(axis=(0, 2)) + 1e-5)
    np.testing.assert_allclose(out["invstd"], exact, rtol=1e-4)


@pytest.mark.parametrize("dtype", [np.float32, "bfloat16"])
def test_statistics_stay_accurate_when_the_sampled_shift_is_far_from_the_mean(dtype):
    """The one-pass statistics shift the values by a sample (16 values spread along each row);
    here every sampled value is an outlier (the rest sit 9000 lower with a spread of 1), the
    worst such a sample can be, and the variance still matches float64 within 5e-5."""
    dtype = np.dtype(pytest.importorskip("ml_dtypes").bfloat16) if dtype == "bfloat16" else np.dtype(dtype)
    rng = np.random.default_rng(6)
    x = 1000 + rng.standard_normal((300, 3, 1024))
    x[:, :, ::64] += 9000
    x = x.astype(np.float32).astype(dtype)
    out = run_all(_C, x, x, None, None, True, False)
    wide = x.astype(np.float64)
    np.testing.assert_allclose(out["invstd"], 1 / np.sqrt(wide.var(axis=(0, 2)) + 1e-5), rtol=5e-5)
    np.testing.assert_allclose(out["mean"], wide.mean(axis=(0, 2)), rtol=1e-6)


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
    from test_batchnorm_kernels import BF16
    for shape in [(2, 1, 1), (7, 13, 31), (2, 65, 1), (130, 2, 63), (3, 2, 9000)]:
        for dtype in (np.float32, np.float64) + ((BF16,) if BF16 is not None else ()):
            for training in (True, False):
                assert_matches_reference(shape, dtype, training, True, True)
                assert_matches_reference(shape, dtype, training, False, False)
                assert_matches_reference(shape, dtype, training, True, True, residual=True)
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
    "residual wrong shape": (dict(residual=np.ones((4, 3, 6), np.float32)), ValueError, "residual has shape"),
    "residual float64": (dict(residual=np.ones((4, 3, 5))), TypeError, "residual must be float32"),
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
    args = fresh()
    args["residual"] = args["out"]
    with pytest.raises(ValueError, match="must not share memory"):
        _C.batch_norm_forward_eval(**{k: v for k, v in args.items() if k != "out"}, out=args["out"], eps=1e-5)


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


def test_bfloat16_activations_take_float32_vectors_and_bfloat16_outputs():
    """bfloat16 x (uint16 bits): the per-channel vectors must be float32 and out bfloat16 too;
    anything else is refused by name before a byte is written."""
    args = fresh()
    args["x"] = np.ones((4, 3, 5), np.uint16)
    with pytest.raises(TypeError, match="out must be uint16"):
        _C.batch_norm_forward_train(**args, momentum=0.1, eps=1e-5)
    args["out"] = np.full((4, 3, 5), 7, np.uint16)
    args["weight"] = np.ones(3, np.float64)
    with pytest.raises(TypeError, match="weight must be float32"):
        _C.batch_norm_forward_train(**args, momentum=0.1, eps=1e-5)
    assert (args["out"] == 7).all() and (args["save_mean"] == 7).all()
    with pytest.raises(TypeError, match="x must be float32, float64 or bfloat16 bits"):
        _C.batch_norm_forward_train(**{**args, "x": np.ones((4, 3, 5), np.int16)}, momentum=0.1, eps=1e-5)
