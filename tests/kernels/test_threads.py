"""OpenMP hazards and the thread-count controls, exercised through the GEMM kernel.

- A child forked after the parent already ran parallel kernels must not wait forever on
  worker threads that fork() did not copy.
- Several Python threads calling kernels at once (the GIL is released) each get a correct
  result.
- The thread count changes speed, not results (beyond float rounding).
- set_num_threads / get_num_threads and OMP_NUM_THREADS are respected.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import minigrad
from minigrad import _C

from isolated import run_python


@pytest.fixture(autouse=True)
def _restore_threads():
    before = minigrad.get_num_threads()
    yield
    minigrad.set_num_threads(before)


def product(a, b):
    out = np.empty((1, a.shape[0], b.shape[1]), a.dtype)
    _C.gemm(a[None], b[None], out)
    return out[0]


def inputs(seed, m, n, k, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype)


def exact(a, b):
    return np.einsum("ik,kj->ij", a.astype(np.float64), b.astype(np.float64), optimize=False)


def _child(queue, seed):
    a, b = inputs(seed, 200, 180, 150)
    queue.put((product(a, b), minigrad.get_num_threads()))


def test_kernel_in_forked_child_completes_and_is_correct():
    minigrad.set_num_threads(max(2, minigrad.get_num_threads()))
    a, b = inputs(1, 200, 180, 150)
    parent = product(a, b)  # the parent's OpenMP team now exists
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child, args=(queue, 1))
    child.start()
    try:  # read before join: the child cannot exit while its result fills the pipe
        result, child_threads = queue.get(timeout=60)
    except Exception:  # queue.Empty: the child hung or died
        child.kill()
        pytest.fail("GEMM in a forked child did not complete within 60 s (waiting on the parent's OpenMP workers?)")
    child.join(timeout=30)
    assert child.exitcode == 0
    np.testing.assert_allclose(result, exact(a, b), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(result, parent, rtol=1e-6, atol=1e-5)
    assert child_threads == 1  # the child runs its kernels on one thread


def test_kernels_from_several_python_threads_at_once():
    minigrad.set_num_threads(max(2, minigrad.get_num_threads()))
    cases = [inputs(seed, 96 + 16 * seed, 130, 70 + seed) for seed in range(6)]
    wanted = [exact(a, b) for a, b in cases]

    def work(i):
        a, b = cases[i]
        return [product(a, b) for _ in range(15)]

    with ThreadPoolExecutor(max_workers=len(cases)) as pool:
        results = list(pool.map(work, range(len(cases))))
    for i, runs in enumerate(results):
        for r in runs:
            np.testing.assert_allclose(r, wanted[i], rtol=1e-4, atol=1e-4, err_msg=f"caller {i}")
            np.testing.assert_array_equal(r, runs[0])


@pytest.mark.parametrize("m,n,k", [(300, 200, 100), (6, 3000, 25), (16, 150, 1100), (200, 7, 40)])
def test_one_thread_and_all_threads_agree(m, n, k):
    a, b = inputs(3, m, n, k)
    minigrad.set_num_threads(1)
    one = product(a, b)
    minigrad.set_num_threads(max(2, os.cpu_count() or 2))
    many = product(a, b)
    np.testing.assert_allclose(many, one, rtol=1e-6, atol=1e-6 * np.sqrt(k))
    np.testing.assert_allclose(one, exact(a, b), rtol=1e-4, atol=1e-4)


def test_set_and_get_num_threads():
    minigrad.set_num_threads(1)
    assert minigrad.get_num_threads() == 1
    assert minigrad.backend_info()["num_threads"] == 1
    minigrad.set_num_threads(3)
    assert minigrad.get_num_threads() == 3
    with pytest.raises(ValueError, match="positive"):
        minigrad.set_num_threads(0)
    assert minigrad.get_num_threads() == 3


@pytest.mark.parametrize("value", ["1", "3"])
def test_omp_num_threads_sets_the_default(value):
    code = (
        "import minigrad, numpy as np; from minigrad import _C; "
        "a = np.ones((1, 64, 64), np.float32); out = np.empty_like(a); _C.gemm(a, a, out); "
        "assert (out == 64).all(); print(minigrad.get_num_threads())"
    )
    proc = run_python(code, OMP_NUM_THREADS=value)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == value
