"""The bfloat16 GEMM (``_C.gemm_bf16``: bfloat16 or float32 operands rounded to bfloat16,
float32 accumulation) against its scalar twin ``_C.ref.gemm_bf16`` and against the float64
product of the rounded operands.

Every road the CPU offers (AMX tiles, AVX512_BF16's vdpbf16ps, or widening to float32) runs
the same sweep in its own process (the road is chosen once, at import, from
MINIGRAD_BF16_KERNEL). Both sides multiply exactly (a product of two 8-bit significands fits
float32's 24 bits) and differ only in the order of the float32 additions, so each lies within
k * 2^-24 * sum_p |a_ip b_pj| of the exact value (to first order), and the two within twice that.
"""

from __future__ import annotations

import itertools
import os

import numpy as np
import pytest

import minigrad
from minigrad import _C

from isolated import run_python

ml_dtypes = pytest.importorskip("ml_dtypes")
BF16 = np.dtype(ml_dtypes.bfloat16)
ROAD_ORDER = ["float32", "avx512_bf16", "amx"]

AWKWARD = [1, 2, 7, 13, 31, 33, 63, 65, 127]
SHAPES = [tuple(AWKWARD[(i + j) % len(AWKWARD)] for j in range(3)) for i in range(len(AWKWARD))]
# Across the blocking: k beyond one pass (512 deep on vdpbf16ps, 1024 on AMX) with an odd
# tail, rows beyond one block of A (8 AMX slivers of 32 rows), the few-rows-many-columns
# shapes of a convolution's forward product and the tall k of its weight gradient.
SHAPES += [(64, 64, 64), (40, 70, 1100), (300, 40, 37), (16, 1200, 144), (9, 20, 3001)]
UNIT = 2.0**-24


def bits(x: np.ndarray) -> np.ndarray:
    return x.astype(BF16).view(np.uint16)


def rounded64(x: np.ndarray) -> np.ndarray:
    """The bfloat16 values of x (float32 or uint16 bits) as float64."""
    return (x.view(BF16) if x.dtype == np.uint16 else x.astype(BF16)).astype(np.float64)


def exact(a, b, ta, tb, alpha=1.0, beta=0.0, c0=None):
    a64, b64 = rounded64(a), rounded64(b)
    a64 = np.swapaxes(a64, 1, 2) if ta else a64
    b64 = np.swapaxes(b64, 1, 2) if tb else b64
    value = alpha * np.einsum("bik,bkj->bij", a64, b64, optimize=False)
    scale = abs(alpha) * np.einsum("bik,bkj->bij", np.abs(a64), np.abs(b64), optimize=False)
    if beta != 0.0:
        value += beta * c0.astype(np.float64)
        scale += abs(beta) * np.abs(c0.astype(np.float64))
    return value, scale


def assert_within(out, want, scale, k, what):
    bound = 2.0 * (k + 2) * UNIT * scale + 1e-30
    err = np.abs(out.astype(np.float64) - want)
    worst = np.unravel_index(np.argmax(err - bound), err.shape)
    assert (err <= bound).all(), f"{what}: error {err[worst]:.3g} > bound {bound[worst]:.3g} at {worst}"


def operands(rng, m, n, k, ta, tb, kinds):
    a = rng.standard_normal((1, k, m) if ta else (1, m, k)).astype(np.float32)
    b = rng.standard_normal((1, n, k) if tb else (1, k, n)).astype(np.float32)
    return (bits(a) if kinds[0] == "bf16" else a), (bits(b) if kinds[1] == "bf16" else b)


def sweep() -> int:
    """Every shape, transpose pair and operand kind; alpha/beta on some; 1 thread vs all."""
    rng = np.random.default_rng(0)
    all_threads = minigrad.get_num_threads()
    checked = 0
    for (m, n, k), ta, tb in itertools.product(SHAPES, (False, True), (False, True)):
        for kinds in (("bf16", "bf16"), ("f32", "bf16"), ("bf16", "f32"), ("f32", "f32")):
            a, b = operands(rng, m, n, k, ta, tb, kinds)
            alpha, beta = (1.5, -0.5) if (m + n) % 2 else (1.0, 0.0)
            c0 = rng.standard_normal((1, m, n)).astype(np.float32)
            want, scale = exact(a, b, ta, tb, alpha, beta, c0)
            results = []
            for threads in (1, all_threads):
                minigrad.set_num_threads(threads)
                out = c0.copy() if beta else np.full((1, m, n), np.nan, np.float32)
                _C.gemm_bf16(a, b, out, ta, tb, alpha, beta)
                what = f"{m}x{n}x{k} ta={ta} tb={tb} {kinds} threads={threads}"
                assert_within(out, want, scale, k, what)
                results.append(out)
                checked += 1
            minigrad.set_num_threads(all_threads)
            np.testing.assert_array_equal(results[1], results[0], err_msg="1 thread vs all")
            ref = c0.copy() if beta else np.empty((1, m, n), np.float32)
            _C.ref.gemm_bf16(a, b, ref, ta, tb, alpha, beta)
            assert_within(ref, want, scale, k, "reference " + what)
    return checked


def available_roads():
    best = minigrad.backend_info()["cpu_bf16_kernel"]
    return ROAD_ORDER[: ROAD_ORDER.index(best) + 1]


@pytest.mark.parametrize("road", ROAD_ORDER)
def test_every_road_matches_the_exact_product(road):
    if road not in available_roads():
        pytest.skip(f"this CPU/OS does not offer {road} (best: {minigrad.backend_info()['cpu_bf16_kernel']})")
    code = (
        "import sys, minigrad; sys.path.insert(0, sys.argv[1]); import test_gemm_bf16; "
        "info = minigrad.backend_info(); assert info['bf16_kernel'] == sys.argv[2], info; "
        "print(info['implementations']['gemm_bf16'].split()[0], test_gemm_bf16.sweep())"
    )
    proc = run_python(code, os.path.dirname(__file__), road, timeout=300, MINIGRAD_BF16_KERNEL=road)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    name, count = proc.stdout.split()
    assert name == road
    assert int(count) == 2 * 4 * 4 * len(SHAPES)


def test_float32_operands_round_to_nearest_even_like_ml_dtypes():
    """A float32 operand times the identity gives its bfloat16 rounding exactly, ties to even.
    (Finite normal values only: an infinity times the identity's zeros is NaN, and the AMX and
    vdpbf16ps instructions count subnormal bfloat16 inputs as zero.)"""
    rng = np.random.default_rng(1)
    a = rng.standard_normal((1, 5, 64)).astype(np.float32)
    tie = np.float32(1.0) + np.float32(2.0**-8)  # halfway between two bfloat16 values
    above = np.float32(1.0) + np.float32(3 * 2.0**-9)  # rounds up
    a[0, 0, :4] = [tie, -tie, above, np.float32(3e38)]
    eye = bits(np.eye(64, dtype=np.float32)[None])
    out = np.empty((1, 5, 64), np.float32)
    _C.gemm_bf16(a, eye, out)
    np.testing.assert_array_equal(out, a.astype(BF16).astype(np.float32))
    assert out[0, 0, 0] == np.float32(1.0) and out[0, 0, 2] == np.float32(1.0 + 2.0**-7)


def test_nan_operands_give_nan():
    a = np.ones((1, 3, 8), np.float32)
    a[0, 1, 2] = np.nan
    out = np.empty((1, 3, 4), np.float32)
    _C.gemm_bf16(a, bits(np.ones((1, 8, 4), np.float32)), out)
    assert np.isnan(out[0, 1]).all() and (out[0, [0, 2]] == 8.0).all()


def test_batched_operands_broadcast():
    rng = np.random.default_rng(2)
    a = bits(rng.standard_normal((3, 7, 20)).astype(np.float32))
    b = bits(rng.standard_normal((1, 20, 9)).astype(np.float32))
    out = np.empty((3, 7, 9), np.float32)
    _C.gemm_bf16(a, b, out)
    want, scale = exact(a, np.broadcast_to(b, (3, 20, 9)), False, False)
    assert_within(out, want, scale, 20, "batched")


def test_bad_arguments_are_refused_before_any_work():
    a = np.zeros((1, 4, 5), np.uint16)
    with pytest.raises(TypeError, match="gemm_bf16: a must be float32 or bfloat16 bits \\(uint16\\), got float64"):
        _C.gemm_bf16(np.zeros((1, 4, 5)), a, np.empty((1, 4, 4), np.float32))
    with pytest.raises(ValueError, match="cannot multiply"):
        _C.gemm_bf16(a, np.zeros((1, 4, 5), np.uint16), np.empty((1, 4, 5), np.float32))
    with pytest.raises(ValueError, match="out has shape"):
        _C.gemm_bf16(a, np.zeros((1, 5, 3), np.uint16), np.empty((1, 4, 4), np.float32))
    with pytest.raises(TypeError, match="out must be float32"):
        _C.gemm_bf16(a, np.zeros((1, 5, 3), np.uint16), np.empty((1, 4, 3), np.float64))


def test_unknown_or_unsupported_road_is_an_import_error():
    proc = run_python("import minigrad", MINIGRAD_BF16_KERNEL="tpu")
    assert proc.returncode != 0 and "MINIGRAD_BF16_KERNEL must be float32, avx512_bf16 or amx, got 'tpu'" in proc.stderr
    best = minigrad.backend_info()["cpu_bf16_kernel"]
    if best != "amx":
        proc = run_python("import minigrad", MINIGRAD_BF16_KERNEL="amx")
        assert proc.returncode != 0 and "not supported by this CPU/OS" in proc.stderr
