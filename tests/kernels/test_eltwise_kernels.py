"""Element-wise kernels (csrc/eltwise.cpp) against their scalar references and numpy, on every
ISA path, at 1 thread and all threads, and their argument checks."""

import os

import numpy as np
import pytest

import minigrad as mg
from minigrad import _C
from minigrad.dtypes import bfloat16

from isolated import run_python

SIZES = [1, 2, 7, 13, 31, 63, 65, 127, 257, 40000, 100003]  # ragged tails and multithreaded sizes


def sample(n, dtype, seed=0):
    x = np.random.default_rng(seed).standard_normal(n).astype(dtype)
    x[::7] = 0.0  # exact zeros: relu's kink (gradient 0 there, as PyTorch)
    return x


def check_all(dtype):
    for n in SIZES:
        x, g, b = sample(n, dtype), sample(n, dtype, 1), sample(n, dtype, 2)
        y, y_ref = np.empty_like(x), np.empty_like(x)
        _C.relu_forward(x, y)
        _C.ref.relu_forward(x, y_ref)
        np.testing.assert_array_equal(y, y_ref)
        np.testing.assert_array_equal(y, np.maximum(x, 0))
        dx, dx_ref = np.empty_like(x), np.empty_like(x)
        _C.relu_backward(g, y, dx)
        _C.ref.relu_backward(g, y, dx_ref)
        np.testing.assert_array_equal(dx, dx_ref)
        np.testing.assert_array_equal(dx, np.where(x > 0, g, 0))
        s = np.empty_like(x)
        _C.add(x, b, s)
        np.testing.assert_array_equal(s, x + b)


def check_all_bfloat16():
    """bfloat16 (uint16 bits): the ReLUs exact, the sum the float32 sum rounded once, NaN, the
    zeros, infinities and subnormals included."""
    special = np.array([np.nan, -np.nan, 0.0, -0.0, np.inf, -np.inf, 1e-40, -1e-40, 3e38, -3e38], np.float32)
    for n in SIZES:
        x, g, b = (sample(n, np.float32, seed) for seed in (0, 1, 2))
        x[: min(n, special.size)] = special[:n]
        x, g, b = (a.astype(bfloat16) for a in (x, g, b))
        xf, gf, bf = (a.astype(np.float32) for a in (x, g, b))
        bits = lambda a: a.view(np.uint16)  # noqa: E731
        y, y_ref = np.empty_like(x), np.empty_like(x)
        _C.relu_forward(bits(x), bits(y))
        _C.ref.relu_forward(bits(x), bits(y_ref))
        np.testing.assert_array_equal(bits(y), bits(y_ref))
        np.testing.assert_array_equal(y.astype(np.float32), np.where(xf < 0, 0, xf))
        dx, dx_ref = np.empty_like(x), np.empty_like(x)
        _C.relu_backward(bits(g), bits(y), bits(dx))
        _C.ref.relu_backward(bits(g), bits(y), bits(dx_ref))
        np.testing.assert_array_equal(bits(dx), bits(dx_ref))
        np.testing.assert_array_equal(dx.astype(np.float32), np.where(y.astype(np.float32) > 0, gf, 0))
        s, s_ref = np.empty_like(x), np.empty_like(x)
        _C.add(bits(x), bits(b), bits(s))
        _C.ref.add(bits(x), bits(b), bits(s_ref))
        np.testing.assert_array_equal(bits(s), bits(s_ref))
        with np.errstate(invalid="ignore", over="ignore"):
            np.testing.assert_array_equal(s.astype(np.float32), (xf + bf).astype(bfloat16).astype(np.float32))
        back = np.empty(n, np.float32)
        _C.convert(bits(s), back)  # and the per-ISA conversions both ways
        np.testing.assert_array_equal(back, s.astype(np.float32))
        rounded = np.empty(n, np.uint16)
        _C.convert(back * np.float32(1.00390625), rounded)
        np.testing.assert_array_equal(rounded, bits((back * np.float32(1.00390625)).astype(bfloat16)))


@pytest.mark.skipif(bfloat16 is None, reason="bfloat16 needs ml_dtypes")
@pytest.mark.parametrize("threads", [1, None])
def test_bfloat16_kernels_match_reference_and_float32(threads):
    before = mg.get_num_threads()
    mg.set_num_threads(threads or os.cpu_count())
    try:
        check_all_bfloat16()
    finally:
        mg.set_num_threads(before)


@pytest.mark.parametrize("threads", [1, None])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernels_match_reference_and_numpy(dtype, threads):
    before = mg.get_num_threads()
    mg.set_num_threads(threads or os.cpu_count())
    try:
        check_all(dtype)
    finally:
        mg.set_num_threads(before)


def test_relu_keeps_nan_and_works_in_place():
    x = np.array([np.nan, -1.0, 2.0, -0.0], np.float32)
    _C.relu_forward(x, x)
    assert np.isnan(x[0]) and x[1] == 0 and x[2] == 2 and x[3] == 0


@pytest.mark.parametrize("isa", ["generic", "avx2", "avx512"])
def test_each_isa_path(isa):
    order = ["generic", "avx2", "avx512"]
    if order.index(isa) > order.index(mg.backend_info()["cpu_isa"]):
        pytest.skip(f"this CPU has no {isa} (best: {mg.backend_info()['cpu_isa']})")
    script = (
        f"import sys; sys.path.insert(0, {os.path.dirname(__file__)!r}); import numpy as np, minigrad as mg; "
        f"import test_eltwise_kernels as t; assert mg.backend_info()['implementations']['eltwise'] == 'eltwise_{isa}'; "
        "t.check_all(np.float32); t.check_all(np.float64); "
        "t.bfloat16 is None or t.check_all_bfloat16(); print('ok')"
    )
    done = run_python(script, MINIGRAD_ISA=isa)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: _C.relu_forward(np.ones(4, np.float32), np.ones(5, np.float32)), ValueError, "out has shape"),
        (lambda: _C.relu_forward(np.ones(4, np.int32), np.ones(4, np.int32)), TypeError, "x must be float32"),
        (lambda: _C.relu_forward(np.ones(8, np.float32)[::2], np.ones(4, np.float32)), ValueError, "C-contiguous"),
        (lambda: _C.relu_forward(np.ones(4, np.float32), np.ones(4, np.float64)), TypeError, "out must be float32"),
        (lambda: _C.relu_backward(np.ones(4), np.ones(3), np.ones(4)), ValueError, "y has shape"),
        (
            lambda: _C.add(np.ones(4), np.ones(4), np.broadcast_to(np.ones(1), (4,))),
            ValueError,
            "writeable|C-contiguous",
        ),
        (lambda: _C.add(np.ones((2, 3)), np.ones((3, 2)), np.ones((2, 3))), ValueError, "b has shape"),
    ],
)
def test_bad_arguments_raise_before_writing(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_bfloat16_bits_do_not_mix_with_float32():
    bits = np.zeros(8, np.uint16)
    with pytest.raises(TypeError, match="out must be uint16"):
        _C.relu_forward(bits, np.zeros(8, np.float32))
    with pytest.raises(TypeError, match="b must be uint16"):
        _C.add(bits, np.zeros(8, np.float32), np.zeros(8, np.uint16))
