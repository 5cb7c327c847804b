"""matmul through the harness (2-D, batched, broadcast batches, 1-D operands, odd sizes), and the
compiled GEMM against its scalar reference and numpy."""

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import _C

from harness import OpCase, check_op, torch


def mm(a, b):
    return a @ b


CASES = {
    "2d": OpCase(mm, mm, [(5, 7), (7, 3)]),
    "2d_odd_sizes": OpCase(mm, mm, [(13, 17), (17, 11)]),
    "inner_1": OpCase(mm, mm, [(4, 1), (1, 6)]),
    "batched": OpCase(mm, mm, [(3, 4, 5), (3, 5, 2)]),
    "batched_times_2d": OpCase(mm, mm, [(2, 3, 4, 5), (5, 6)]),
    "2d_times_batched": OpCase(mm, mm, [(4, 5), (3, 5, 2)]),
    "batch_broadcast": OpCase(mm, mm, [(2, 1, 3, 4), (5, 4, 2)]),
    "batch_of_one": OpCase(mm, mm, [(1, 3, 4), (6, 4, 2)]),
    "vector_matrix": OpCase(mm, mm, [(5,), (5, 3)]),
    "matrix_vector": OpCase(mm, mm, [(4, 5), (5,)]),
    "vector_vector": OpCase(mm, mm, [(6,), (6,)]),
    "batched_vector": OpCase(mm, mm, [(2, 3, 5), (5,)]),
    "method": OpCase(lambda a, b: a.matmul(b), lambda a, b: a.matmul(b), [(3, 4), (4, 2)]),
    "function": OpCase(mg.matmul, lambda a, b: a @ b, [(3, 4), (4, 2)]),
    "transposed_operand": OpCase(lambda a, b: a.T @ b, lambda a, b: a.T @ b, [(4, 3), (4, 2)]),
    "linear_layer": OpCase(lambda x, w, b: x @ w.T + b, lambda x, w, b: x @ w.T + b, [(6, 5), (3, 5), (3,)]),
    "linear_functional": OpCase(F.linear, torch.nn.functional.linear if torch else None, [(6, 5), (3, 5), (3,)]),
}
# The bfloat16 mode for the single-product cases: their output values each sum k products
# (k = the first operand's last dimension; F.linear adds the bias as one more term).
for _name, _case in CASES.items():
    if _name != "linear_layer":
        _case.autocast_terms = _case.shapes[0][-1] + (1 if _name == "linear_functional" else 0)


@pytest.mark.parametrize("name", sorted(CASES))
def test_matmul(name):
    check_op(CASES[name])


def test_matmul_hand_computed():
    a = mg.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    b = mg.tensor([[5.0], [6.0]], requires_grad=True)
    c = a @ b
    np.testing.assert_array_equal(c.numpy(), [[17.0], [39.0]])
    c.sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [[5.0, 6.0], [5.0, 6.0]])
    np.testing.assert_array_equal(b.grad.numpy(), [[4.0], [6.0]])


def test_frozen_operand_gets_no_gradient():
    x = mg.randn(4, 3)
    w = mg.randn(3, 2, requires_grad=True)
    (x @ w).sum().backward()
    assert x.grad is None and w.grad is not None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans_a, trans_b", [(False, False), (True, False), (False, True), (True, True)])
def test_compiled_gemm_matches_reference_and_numpy(dtype, trans_a, trans_b):
    rng = np.random.default_rng(3)
    batch, m, n, k = 3, 37, 29, 41  # sizes that are no multiple of any register block
    a = rng.standard_normal((batch, k, m) if trans_a else (batch, m, k)).astype(dtype)
    b = rng.standard_normal((1, n, k) if trans_b else (1, k, n)).astype(dtype)  # batch 1 broadcasts
    expected = (a.transpose(0, 2, 1) if trans_a else a) @ (b.transpose(0, 2, 1) if trans_b else b)
    fast, ref = (np.full((batch, m, n), np.nan, dtype) for _ in range(2))
    _C.gemm(a, b, fast, trans_a, trans_b)
    _C.ref.gemm(a, b, ref, trans_a, trans_b)
    tol = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(ref, expected, rtol=tol, atol=tol)
    np.testing.assert_allclose(fast, expected, rtol=tol, atol=tol)


def test_compiled_gemm_alpha_beta():
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((1, 5, 4)), rng.standard_normal((1, 4, 3))
    c = rng.standard_normal((1, 5, 3))
    expected = 2.0 * a @ b + 0.5 * c
    _C.gemm(a, b, c, alpha=2.0, beta=0.5)
    np.testing.assert_allclose(c, expected, rtol=1e-12, atol=1e-12)
