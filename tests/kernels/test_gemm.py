"""The compiled GEMM (``_C.gemm``) against its scalar twin ``_C.ref.gemm`` and numpy (float64).

Every instruction-set path the CPU offers runs the same sweep of awkward shapes in its own
process (the path is chosen once, at import, from MINIGRAD_ISA). The sweep covers sizes that
are not multiples of any tile (1, 2, 7, 13, 31, 63, 65, 127, 257), the four transpose
combinations, alpha/beta, both dtypes, 1 thread and all threads, and shapes large enough to
cross every cache block (several K passes, several row blocks, several B panels).
"""

from __future__ import annotations

import itertools
import os

import numpy as np
import pytest

import minigrad
from minigrad import _C

from isolated import run_python

ISA_ORDER = ["generic", "avx2", "avx512"]

AWKWARD = [1, 2, 7, 13, 31, 63, 65, 127, 257]
# (m, n, k): each awkward size in each position, then shapes that cross block boundaries:
# K beyond one pass (KC = 512), rows beyond one block (MC = 240 fp32 / 120 fp64), columns
# beyond one B panel (NC = 2048 fp32 / 1024 fp64), and the few-rows shapes of conv layers.
SHAPES = [tuple(AWKWARD[(i + j) % len(AWKWARD)] for j in range(3)) for i in range(len(AWKWARD))]
SHAPES += [(64, 64, 64), (6, 700, 25), (16, 130, 1100), (250, 33, 70), (5, 2100, 3)]
# Tall k against a small C: with B transposed these take the dot-product road (k chunks of
# 2048 fp32 / 1024 fp64 values, gathered into parts of at least 4 chunks): a k tail in the
# last chunk, row and column counts that leave edge blocks (dot blocks are 4x6, 3x4, 2x4),
# one part and several parts (which threads share), and columns split among threads. In the
# other layouts the first two (at most 4 tiles of C, k >= 8192) split k on the packed road.
DOT_SHAPES = [(5, 13, 20001), (13, 65, 8200), (1, 2, 9001), (7, 3, 1030)]
SHAPES += DOT_SHAPES

UNIT_ROUNDOFF = {np.float32: 2.0**-24, np.float64: 2.0**-53}


def operands(rng, m, n, k, ta, tb, dtype, batch_a=1, batch_b=1):
    a = rng.standard_normal((batch_a, k, m) if ta else (batch_a, m, k)).astype(dtype)
    b = rng.standard_normal((batch_b, n, k) if tb else (batch_b, k, n)).astype(dtype)
    return a, b


def expected(a, b, ta, tb, alpha=1.0, beta=0.0, c0=None):
    """alpha * op(a) @ op(b) + beta * c0 in float64, and the size of the terms summed (the
    scale a rounding error is measured against)."""
    a64 = (np.swapaxes(a, 1, 2) if ta else a).astype(np.float64)
    b64 = (np.swapaxes(b, 1, 2) if tb else b).astype(np.float64)

    # einsum's own loops, not OpenBLAS: a second thread pool spinning next to minigrad's
    # OpenMP team makes both crawl on a 2-core machine.
    def matmul(x, y):
        return np.einsum("bik,bkj->bij", x, y, optimize=False)

    value = alpha * matmul(a64, b64)
    scale = abs(alpha) * matmul(np.abs(a64), np.abs(b64))
    if beta != 0.0:
        value = value + beta * c0.astype(np.float64)
        scale = scale + abs(beta) * np.abs(c0)
    return value, np.maximum(scale, 1e-300)


def assert_close(got, want, scale, dtype, k, what):
    """The classical bound for a sum of k products: |error| <= (k + 2) u sum|terms|. A wrong
    or dropped term breaks it by orders of magnitude; rounding never does."""
    err = np.abs(got.astype(np.float64) - want) / scale
    limit = (k + 2) * UNIT_ROUNDOFF[dtype]
    assert err.max() <= limit, f"{what}: max relative error {err.max():.3g} > {limit:.3g}"


def sweep(threads_options=(1, None)):
    """Runs every shape x transpose x dtype x thread count through _C.gemm and _C.ref.gemm and
    checks both against numpy. Returns the number of products checked."""
    rng = np.random.default_rng(1234)
    all_threads = minigrad.get_num_threads()
    checked = 0
    for dtype, (m, n, k), (ta, tb) in itertools.product(
        (np.float32, np.float64), SHAPES, itertools.product((False, True), repeat=2)
    ):
        a, b = operands(rng, m, n, k, ta, tb, dtype)
        c0 = rng.standard_normal((1, m, n)).astype(dtype)
        alpha, beta = (1.0, 0.0) if (m + n + k) % 2 else (-0.75, 1.5)
        want, scale = expected(a, b, ta, tb, alpha, beta, c0)
        ref = c0.copy()
        _C.ref.gemm(a, b, ref, ta, tb, alpha, beta)
        what = f"{np.dtype(dtype).name} m={m} n={n} k={k} ta={ta} tb={tb} alpha={alpha} beta={beta}"
        assert_close(ref, want, scale, dtype, k, "ref " + what)
        results = []
        for threads in threads_options:
            minigrad.set_num_threads(threads or all_threads)
            out = c0.copy()
            _C.gemm(a, b, out, ta, tb, alpha, beta)
            assert_close(out, want, scale, dtype, k, f"{what} threads={threads or all_threads}")
            results.append(out)
            checked += 1
        minigrad.set_num_threads(all_threads)
        # Each element's sum runs in the same order whatever the split across threads.
        for other in results[1:]:
            np.testing.assert_array_equal(other, results[0], err_msg="1 thread vs all: " + what)
    return checked


# A short product with an output beyond 16 MiB and beta == 0 stores C non-temporally, in
# tiles whose rows start on 64-byte lines (the columns before the first line run apart):
# the row count leaves edge tiles on every ISA, and the output starts at each of several
# offsets from a line (0 and 8 bytes: f64 and f32 both aligned or not).
LARGE_OUT = (130, 32784, 13)


def large_output_sweep():
    """Each transpose combination of one large-output product into NaN-filled outputs at
    several alignments, against numpy; 1 thread vs all threads bitwise. Returns the count."""
    rng = np.random.default_rng(99)
    m, n, k = LARGE_OUT
    all_threads = minigrad.get_num_threads()
    checked = 0
    for dtype in (np.float32, np.float64):
        a, b = operands(rng, m, n, k, False, False, dtype)
        want, scale = expected(a, b, False, False)
        for (ta, tb), offset in zip(itertools.product((False, True), repeat=2), (0, 1, 2, 7)):
            a_op = np.ascontiguousarray(np.swapaxes(a, 1, 2)) if ta else a
            b_op = np.ascontiguousarray(np.swapaxes(b, 1, 2)) if tb else b
            line = 64 // np.dtype(dtype).itemsize  # values per 64-byte line
            base = np.empty(m * n + 2 * line, dtype)
            start = (-base.ctypes.data // np.dtype(dtype).itemsize) % line
            out = base[start + offset : start + offset + m * n].reshape(1, m, n)
            results = []
            for threads in (1, all_threads):
                minigrad.set_num_threads(threads)
                out[...] = np.nan
                _C.gemm(a_op, b_op, out, ta, tb)
                assert_close(
                    out,
                    want,
                    scale,
                    dtype,
                    k,
                    f"{np.dtype(dtype).name} {m}x{n}x{k} ta={ta} tb={tb} offset={offset} threads={threads}",
                )
                results.append(out.copy())
                checked += 1
            minigrad.set_num_threads(all_threads)
            np.testing.assert_array_equal(results[1], results[0], err_msg="1 thread vs all")
    return checked


def available_isas():
    best = minigrad.backend_info()["cpu_isa"]
    return ISA_ORDER[: ISA_ORDER.index(best) + 1]


@pytest.mark.parametrize("isa", ISA_ORDER)
def test_every_isa_path_matches_reference(isa):
    if isa not in available_isas():
        pytest.skip(f"this CPU/OS does not offer {isa} (best: {minigrad.backend_info()['cpu_isa']})")
    code = (
        "import sys, minigrad; sys.path.insert(0, sys.argv[1]); import test_gemm; "
        "info = minigrad.backend_info(); assert info['isa'] == sys.argv[2], info; "
        "print(info['implementations']['gemm'], info['implementations']['gemm_dot'], "
        "test_gemm.sweep(), test_gemm.large_output_sweep())"
    )
    proc = run_python(code, os.path.dirname(__file__), isa, MINIGRAD_ISA=isa)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    name, dot_name, count, large_count = proc.stdout.split()
    assert isa in name and isa in dot_name
    assert int(count) == 2 * 2 * 4 * len(SHAPES)
    assert int(large_count) == 2 * 4 * 2


def test_micro_kernel_name_reported():
    name = minigrad.backend_info()["implementations"]["gemm"]
    assert name.startswith("sgemm_ukr_" + minigrad.backend_info()["isa"])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_beta_zero_ignores_nan_in_out(dtype):
    rng = np.random.default_rng(0)
    for m, n, k in [(13, 31, 7), (64, 64, 64), (257, 65, 600)]:
        a, b = operands(rng, m, n, k, False, False, dtype)
        out = np.full((1, m, n), np.nan, dtype)
        _C.gemm(a, b, out, False, False, 2.0, 0.0)
        want, scale = expected(a, b, False, False, 2.0)
        assert np.isfinite(out).all()
        assert_close(out, want, scale, dtype, k, f"beta=0 over NaN {m}x{n}x{k}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_alpha_zero_and_empty_k_scale_out_by_beta(dtype):
    rng = np.random.default_rng(0)
    a, b = operands(rng, 7, 9, 5, False, False, dtype)
    c0 = rng.standard_normal((1, 7, 9)).astype(dtype)
    out = c0.copy()
    _C.gemm(a, b, out, False, False, 0.0, 0.5)
    np.testing.assert_array_equal(out, (c0 * dtype(0.5)))
    out = c0.copy()
    _C.gemm(np.zeros((1, 7, 0), dtype), np.zeros((1, 0, 9), dtype), out, False, False, 1.0, -2.0)
    np.testing.assert_array_equal(out, c0 * dtype(-2.0))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ta,tb", list(itertools.product((False, True), repeat=2)))
@pytest.mark.parametrize("batches", [(5, 5), (1, 5), (5, 1), (8, 8)])
def test_batched_with_broadcast(dtype, ta, tb, batches):
    rng = np.random.default_rng(7)
    # Small items (the batch splits across threads) and one large enough to use the team.
    for m, n, k in [(13, 31, 7), (6, 100, 25), (130, 70, 90)]:
        a, b = operands(rng, m, n, k, ta, tb, dtype, *batches)
        batch = max(batches)
        c0 = rng.standard_normal((batch, m, n)).astype(dtype)
        out, ref = c0.copy(), c0.copy()
        _C.gemm(a, b, out, ta, tb, 1.5, -1.0)
        _C.ref.gemm(a, b, ref, ta, tb, 1.5, -1.0)
        want, scale = expected(a, b, ta, tb, 1.5, -1.0, c0)
        assert_close(out, want, scale, dtype, k, f"batched {batches} {m}x{n}x{k} ta={ta} tb={tb}")
        assert_close(ref, want, scale, dtype, k, f"ref batched {batches} {m}x{n}x{k}")


def _bad_call(a, b, out, ta=False, tb=False):
    sentinel = out.copy() if out.flags.writeable else None
    with pytest.raises((TypeError, ValueError)) as info:
        _C.gemm(a, b, out, ta, tb)
    if sentinel is not None:  # nothing was written before the error
        np.testing.assert_array_equal(out, sentinel)
    return str(info.value)


def test_bad_arguments_raise_before_touching_memory():
    f32 = np.ones((1, 4, 5), np.float32)
    b32 = np.ones((1, 5, 3), np.float32)
    out = np.full((1, 4, 3), 7.0, np.float32)

    with pytest.raises(TypeError, match="float32"):
        _C.gemm(f32.astype(np.int32), b32, out)
    with pytest.raises(TypeError, match="b must be float64"):
        _C.gemm(f32.astype(np.float64), b32, out.astype(np.float64))
    with pytest.raises(TypeError, match="float32"):
        _C.gemm(f32, b32.astype(np.float64), out)
    assert "C-contiguous" in _bad_call(np.ones((1, 4, 10), np.float32)[:, :, ::2], b32, out)
    assert "C-contiguous" in _bad_call(f32, b32, np.full((1, 3, 4), 1.0, np.float32).transpose(0, 2, 1))
    assert "3 dimensions" in _bad_call(f32[0], b32, out)
    assert "cannot multiply" in _bad_call(f32, np.ones((1, 4, 3), np.float32), out)
    assert "cannot multiply" in _bad_call(f32, b32, out, tb=True)
    assert "cannot multiply" in _bad_call(
        np.ones((2, 4, 5), np.float32), np.ones((3, 5, 3), np.float32), np.zeros((3, 4, 3), np.float32)
    )
    assert "out has shape (1, 4, 4)" in _bad_call(f32, b32, np.zeros((1, 4, 4), np.float32))
    assert "out has shape (1, 4, 3)" in _bad_call(np.ones((2, 4, 5), np.float32), b32, out)
    read_only = np.zeros((1, 4, 3), np.float32)
    read_only.flags.writeable = False
    assert "writeable" in _bad_call(f32, b32, read_only)
    np.testing.assert_array_equal(read_only, 0.0)
    # Python lists are not silently converted.
    with pytest.raises(TypeError):
        _C.gemm(f32.tolist(), b32, out)
    np.testing.assert_array_equal(out, 7.0)
