"""Pooling kernels against the scalar reference (_C.ref) and PyTorch on awkward shapes, each
instruction-set build (subprocess with MINIGRAD_ISA), 1 thread vs all; argument checks."""

import os

import numpy as np
import pytest

from minigrad import _C

from isolated import run_python

# (x shape, kernel, stride, padding)
WINDOWS = [
    ((2, 3, 28, 28), (2, 2), (2, 2), (0, 0)),
    ((1, 2, 7, 13), (2, 2), (2, 2), (0, 0)),
    ((2, 1, 7, 7), (3, 3), (2, 2), (1, 1)),
    ((1, 3, 13, 2), (3, 2), (1, 1), (1, 1)),
    ((3, 2, 1, 1), (1, 1), (1, 1), (0, 0)),
    ((1, 1, 31, 17), (5, 4), (3, 2), (2, 2)),
    ((0, 2, 4, 4), (2, 2), (2, 2), (0, 0)),
]
ADAPTIVE = [((2, 3, 7, 5), (1, 1)), ((1, 2, 13, 7), (3, 2)), ((1, 1, 2, 1), (2, 1)), ((2, 2, 8, 8), (8, 8))]


def sample(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.permutation(int(np.prod(shape))) * 0.01 - 1).reshape(shape).astype(dtype)


def run_window(module, x, kernel, stride, padding):
    ho = (x.shape[2] + 2 * padding[0] - kernel[0]) // stride[0] + 1
    wo = (x.shape[3] + 2 * padding[1] - kernel[1]) // stride[1] + 1
    out_shape = (*x.shape[:2], ho, wo)
    gy = sample(out_shape, x.dtype, seed=1)
    y_max, idx = np.full(out_shape, np.nan, x.dtype), np.full(out_shape, -1, np.int64)
    module.max_pool2d_forward(x, y_max, idx, kernel, stride, padding)
    gx_max = np.full(x.shape, np.nan, x.dtype)
    module.max_pool2d_backward(gy, gx_max, idx, kernel, stride, padding)
    y_avg, gx_avg = np.full(out_shape, np.nan, x.dtype), np.full(x.shape, np.nan, x.dtype)
    module.avg_pool2d_forward(x, y_avg, kernel, stride, padding)
    module.avg_pool2d_backward(gy, gx_avg, kernel, stride, padding)
    return y_max, idx, gx_max, y_avg, gx_avg


def run_adaptive(module, x, size):
    y = np.full((*x.shape[:2], *size), np.nan, x.dtype)
    module.adaptive_avg_pool2d_forward(x, y)
    gx = np.full(x.shape, np.nan, x.dtype)
    module.adaptive_avg_pool2d_backward(sample(y.shape, x.dtype, seed=2), gx)
    return y, gx


def check_against_reference():
    for dtype in (np.float32, np.float64):
        for shape, kernel, stride, padding in WINDOWS:
            x = sample(shape, dtype)
            for got, want in zip(
                run_window(_C, x, kernel, stride, padding), run_window(_C.ref, x, kernel, stride, padding)
            ):
                np.testing.assert_allclose(got, want, rtol=1e-6, err_msg=f"{shape} {kernel} {stride} {padding}")
        for shape, size in ADAPTIVE:
            x = sample(shape, dtype)
            for got, want in zip(run_adaptive(_C, x, size), run_adaptive(_C.ref, x, size)):
                np.testing.assert_allclose(got, want, rtol=1e-6, err_msg=f"{shape} -> {size}")


def test_against_reference():
    check_against_reference()


def test_against_torch():
    torch = pytest.importorskip("torch", reason="PyTorch parity needs torch==2.13.0")
    F = torch.nn.functional
    for shape, kernel, stride, padding in WINDOWS[:-1]:
        x = sample(shape, np.float64)
        y_max, idx, gx_max, y_avg, gx_avg = run_window(_C, x, kernel, stride, padding)
        ty, tidx = F.max_pool2d(torch.from_numpy(x), kernel, stride, padding, return_indices=True)
        np.testing.assert_array_equal(y_max, ty.numpy())
        np.testing.assert_array_equal(idx, tidx.numpy())
        np.testing.assert_allclose(
            y_avg, F.avg_pool2d(torch.from_numpy(x), kernel, stride, padding).numpy(), rtol=1e-12
        )
    for shape, size in ADAPTIVE:
        x = sample(shape, np.float64)
        np.testing.assert_allclose(
            run_adaptive(_C, x, size)[0], F.adaptive_avg_pool2d(torch.from_numpy(x), size).numpy(), rtol=1e-12
        )


def test_max_pool_nan_wins_and_first_maximum_is_chosen():
    x = np.array([[[[1.0, 3.0, 3.0, np.nan], [3.0, 0.0, 2.0, 5.0]]]])
    y, idx = np.empty((1, 1, 1, 2)), np.empty((1, 1, 1, 2), np.int64)
    _C.max_pool2d_forward(x, y, idx, (2, 2), (2, 2))
    assert y[0, 0, 0, 0] == 3.0 and idx[0, 0, 0, 0] == 1
    assert np.isnan(y[0, 0, 0, 1]) and idx[0, 0, 0, 1] == 3


def test_one_thread_matches_all_threads():
    x = sample((8, 16, 20, 20), np.float32)
    threads = _C.get_num_threads()
    try:
        _C.set_num_threads(1)
        single = run_window(_C, x, (3, 3), (2, 2), (1, 1)) + run_adaptive(_C, x, (3, 3))
    finally:
        _C.set_num_threads(threads)
    for a, b in zip(single, run_window(_C, x, (3, 3), (2, 2), (1, 1)) + run_adaptive(_C, x, (3, 3))):
        np.testing.assert_array_equal(a, b)


ISAS = ["generic", "avx2", "avx512"]


@pytest.mark.parametrize("isa", ISAS)
def test_each_isa_build(isa):
    available = ISAS[: ISAS.index(_C.backend_info()["cpu_isa"]) + 1]
    if isa not in available:
        pytest.skip(f"this CPU/OS offers only {available}")
    here = os.path.dirname(os.path.abspath(__file__))
    code = (
        f"import sys; sys.path.insert(0, {here!r}); import test_pool_kernels as t; from minigrad import _C; "
        "t.check_against_reference(); _C.set_num_threads(1); t.check_against_reference()"
    )
    result = run_python(code, MINIGRAD_ISA=isa)
    assert result.returncode == 0, result.stderr[-3000:]


def test_bad_arguments_raise():
    x = sample((1, 2, 4, 4), np.float32)
    y, idx = np.empty((1, 2, 2, 2), np.float32), np.empty((1, 2, 2, 2), np.int64)
    with pytest.raises(TypeError, match="indices must be int64"):
        _C.max_pool2d_forward(x, y, idx.astype(np.int32), (2, 2), (2, 2))
    with pytest.raises(TypeError, match="indices must be a numpy array"):
        _C.max_pool2d_backward(y, np.empty_like(x), [[0]], (2, 2), (2, 2))
    with pytest.raises(ValueError, match="out has shape"):
        _C.max_pool2d_forward(x, y[:, :1].copy(), idx, (2, 2), (2, 2))
    with pytest.raises(ValueError, match="C-contiguous"):
        _C.avg_pool2d_forward(x[..., ::2], np.empty((1, 2, 2, 1), np.float32), (2, 2), (2, 2))
    with pytest.raises(TypeError, match="out must be float32"):
        _C.avg_pool2d_forward(x, y.astype(np.float64), (2, 2), (2, 2))
    with pytest.raises(ValueError, match="padding"):
        _C.max_pool2d_forward(x, y, idx, (2, 2), (2, 2), (2, 2))
    bad = np.full((1, 2, 2, 2), 16, np.int64)
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 16\)"):
        _C.max_pool2d_backward(y, np.empty_like(x), bad, (2, 2), (2, 2))
    with pytest.raises(ValueError, match="between 1 and the input size"):
        _C.adaptive_avg_pool2d_forward(x, np.empty((1, 2, 5, 1), np.float32))
    with pytest.raises(ValueError, match="not an adaptive pooling"):
        _C.adaptive_avg_pool2d_backward(np.empty((1, 2, 5, 1), np.float32), np.empty_like(x))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(2, 3, 28, 28), (1, 2, 7, 13), (1, 1, 2, 9), (3, 2, 6, 18), (1, 1, 4, 2)])
def test_2x2_max_pool_ties_and_nans_match_the_reference(dtype, shape):
    """The 2x2 stride-2 path (vectorised for float32) makes the reference's choice: the first
    maximum in row-major order, and a NaN over any number (the last NaN of the window)."""
    rng = np.random.default_rng(sum(shape))
    x = rng.integers(-3, 4, shape).astype(dtype)  # few distinct values: many ties
    x[rng.random(shape) < 0.08] = np.nan
    x[0, 0, 1, 0] = np.nan  # at least one, inside the first window
    ho, wo = shape[2] // 2, shape[3] // 2
    got = [np.full((*shape[:2], ho, wo), -7, dtype), np.full((*shape[:2], ho, wo), -1, np.int64)]
    want = [np.full((*shape[:2], ho, wo), -7, dtype), np.full((*shape[:2], ho, wo), -1, np.int64)]
    _C.max_pool2d_forward(x, *got, (2, 2), (2, 2))
    _C.ref.max_pool2d_forward(x, *want, (2, 2), (2, 2))
    np.testing.assert_array_equal(got[0], want[0])  # NaNs compare equal here
    np.testing.assert_array_equal(got[1], want[1])
    assert np.isnan(got[0]).any() and (got[1] >= 0).all()
