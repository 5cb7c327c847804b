"""Element-wise ops and activations through the harness: float64 gradcheck (with broadcasting)
and float32 PyTorch parity."""

import numpy as np
import pytest

import minigrad as mg

from harness import OpCase, away_from_zero, check_op, check_parity, min_gap, positive, ties, torch

F = torch.nn.functional if torch is not None else None


def clip_kink(arrays):
    return bool((np.abs(arrays[0] + 0.3) < 1e-3).any() or (np.abs(arrays[0] - 0.4) < 1e-3).any())


COND = np.array([[True, False, True, True], [False, False, True, False], [True, True, False, True]])

CASES = {
    # arithmetic, same shapes and broadcast both ways (the engine sums gradients back)
    "add": OpCase(lambda a, b: a + b, lambda a, b: a + b, [(3, 4), (3, 4)]),
    "add_broadcast_row": OpCase(lambda a, b: a + b, lambda a, b: a + b, [(3, 4), (4,)]),
    "add_broadcast_both": OpCase(lambda a, b: a + b, lambda a, b: a + b, [(3, 1, 4), (2, 1)]),
    "add_scalar": OpCase(lambda a: a + 2.5, lambda a: a + 2.5, [(2, 3)]),
    "radd_scalar": OpCase(lambda a: 2.5 + a, lambda a: 2.5 + a, [(2, 3)]),
    "sub_broadcast": OpCase(lambda a, b: a - b, lambda a, b: a - b, [(2, 3, 4), (3, 1)]),
    "rsub_scalar": OpCase(lambda a: 1.5 - a, lambda a: 1.5 - a, [(5,)]),
    "mul_broadcast": OpCase(lambda a, b: a * b, lambda a, b: a * b, [(4, 1), (1, 5)]),
    "mul_zero_dim": OpCase(lambda a, b: a * b, lambda a, b: a * b, [(3, 2), ()]),
    "rmul_scalar": OpCase(lambda a: 3.0 * a, lambda a: 3.0 * a, [(4,)]),
    "div_broadcast": OpCase(
        lambda a, b: a / b, lambda a, b: a / b, [(3, 4), (4,)], samplers=[away_from_zero, away_from_zero]
    ),
    "rdiv_scalar": OpCase(lambda a: 2.0 / a, lambda a: 2.0 / a, [(6,)], samplers=[away_from_zero]),
    "pow_tensor_exponent": OpCase(
        lambda a, b: a**b, lambda a, b: a**b, [(3, 4), (4,)], samplers=[positive, away_from_zero]
    ),
    "pow_scalar_exponent": OpCase(lambda a: a**3, lambda a: a**3, [(3, 4)]),
    "pow_fractional": OpCase(lambda a: a**0.5, lambda a: a**0.5, [(3, 4)], samplers=[positive]),
    "rpow": OpCase(lambda a: 2.0**a, lambda a: 2.0**a, [(3, 4)]),
    "neg": OpCase(lambda a: -a, lambda a: -a, [(3, 4)]),
    # unary math
    "abs": OpCase(lambda a: abs(a), lambda a: abs(a), [(3, 4)], kink=min_gap),
    "abs_method": OpCase(lambda a: a.abs(), lambda a: a.abs(), [(2, 5)], kink=min_gap),
    "exp": OpCase(lambda a: a.exp(), lambda a: a.exp(), [(3, 4)]),
    "log": OpCase(lambda a: a.log(), lambda a: a.log(), [(3, 4)], samplers=[positive]),
    "sqrt": OpCase(lambda a: a.sqrt(), lambda a: a.sqrt(), [(3, 4)], samplers=[positive]),
    "clip_both": OpCase(lambda a: a.clip(-0.3, 0.4), lambda a: a.clamp(-0.3, 0.4), [(4, 5)], kink=clip_kink),
    "clip_min_only": OpCase(lambda a: mg.clip(a, min=-0.3), lambda a: a.clamp(min=-0.3), [(4, 5)], kink=clip_kink),
    "clip_max_only": OpCase(lambda a: mg.clip(a, max=0.4), lambda a: a.clamp(max=0.4), [(4, 5)], kink=clip_kink),
    "maximum": OpCase(mg.maximum, torch.maximum if torch else None, [(3, 4), (3, 4)], kink=ties),
    "maximum_broadcast": OpCase(mg.maximum, torch.maximum if torch else None, [(3, 4), (4,)], kink=ties),
    "minimum_broadcast": OpCase(mg.minimum, torch.minimum if torch else None, [(2, 1, 3), (4, 1)], kink=ties),
    "where": OpCase(
        lambda a, b: mg.where(COND, a, b), lambda a, b: torch.where(torch.from_numpy(COND), a, b), [(3, 4), (3, 4)]
    ),
    "where_broadcast": OpCase(
        lambda a, b: mg.where(mg.tensor(COND), a, b),
        lambda a, b: torch.where(torch.from_numpy(COND), a, b),
        [(4,), (3, 1)],
    ),
    "where_scalar_other": OpCase(
        lambda a: mg.where(COND, a, 0.0), lambda a: torch.where(torch.from_numpy(COND), a, 0.0), [(3, 4)]
    ),
    # activations
    "relu": OpCase(lambda a: a.relu(), lambda a: a.relu(), [(4, 5)], kink=min_gap),
    "leaky_relu": OpCase(
        lambda a: mg.nn.functional.leaky_relu(a, 0.1), lambda a: F.leaky_relu(a, 0.1), [(4, 5)], kink=min_gap
    ),
    "leaky_relu_default": OpCase(lambda a: a.leaky_relu(), lambda a: F.leaky_relu(a), [(4, 5)], kink=min_gap),
    "sigmoid": OpCase(lambda a: a.sigmoid(), lambda a: a.sigmoid(), [(4, 5)]),
    "sigmoid_large": OpCase(lambda a: (a * 40).sigmoid(), lambda a: (a * 40).sigmoid(), [(4, 5)]),
    "tanh": OpCase(lambda a: a.tanh(), lambda a: a.tanh(), [(4, 5)]),
    # a chain mixing several of them, with a constant operand in the middle
    "composite": OpCase(
        lambda a, b: ((a * b).tanh() + a.exp() / (1 + b * b)).sqrt(),
        lambda a, b: ((a * b).tanh() + a.exp() / (1 + b * b)).sqrt(),
        [(3, 4), (4,)],
        samplers=[positive, positive],
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_op(name):
    check_op(CASES[name])


def test_sigmoid_saturates_without_overflow():
    x = mg.tensor([-1000.0, -50.0, 0.0, 50.0, 1000.0], requires_grad=True)
    with np.errstate(over="raise"):
        y = x.sigmoid()
        y.sum().backward()
    np.testing.assert_allclose(y.numpy(), [0.0, 1.9287499e-22, 0.5, 1.0, 1.0], rtol=1e-6)
    np.testing.assert_allclose(x.grad.numpy(), [0.0, 1.9287499e-22, 0.25, 0.0, 0.0], rtol=1e-6, atol=1e-30)


def test_hand_computed_values():
    x = mg.tensor([-2.0, 0.0, 3.0], requires_grad=True)
    y = (x * x * x - 2 * x).sum()  # d/dx = 3x^2 - 2
    y.backward()
    assert y.item() == pytest.approx(-8 + 4 + 27 - 6)
    np.testing.assert_array_equal(x.grad.numpy(), [10.0, -2.0, 25.0])


def test_kink_conventions_match_pytorch():
    """At the kinks themselves: relu'(0) = 0, |x|'(0) = 0, clip passes the gradient at its
    bounds, maximum/minimum split a tie in half."""
    x = mg.tensor([0.0, 0.0, 1.0], requires_grad=True)
    (x.relu() + abs(x) + x.clip(0.0, 1.0)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 1.0, 3.0])
    a, b = mg.tensor([1.0, 2.0], requires_grad=True), mg.tensor([1.0, 3.0], requires_grad=True)
    mg.maximum(a, b).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [0.5, 0.0])
    np.testing.assert_array_equal(b.grad.numpy(), [0.5, 1.0])


@pytest.mark.parametrize(
    "op, reference",
    [
        ("__eq__", np.equal),
        ("__ne__", np.not_equal),
        ("__lt__", np.less),
        ("__le__", np.less_equal),
        ("__gt__", np.greater),
        ("__ge__", np.greater_equal),
    ],
)
def test_comparisons_are_boolean_and_record_nothing(op, reference):
    a = mg.tensor([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]], requires_grad=True)
    b = mg.tensor([2.0, 2.0, 2.0])
    out = getattr(a, op)(b)
    assert out.dtype == np.bool_ and not out.requires_grad and out.is_leaf
    np.testing.assert_array_equal(out.numpy(), reference(a.numpy(), b.numpy()))
    np.testing.assert_array_equal(getattr(a, op)(2.0).numpy(), reference(a.numpy(), 2.0))


def test_cast_between_float_dtypes_converts_the_gradient_back():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    y = x.double()
    assert y.dtype == np.float64
    (y * y).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0])
    assert y.float().dtype == np.float32


def test_cast_to_integer_carries_no_gradient():
    x = mg.tensor([1.7, -2.2], requires_grad=True)
    y = x.to(np.int64)
    assert y.dtype == np.int64 and not y.requires_grad
    np.testing.assert_array_equal(y.numpy(), [1, -2])


def test_numpy_array_on_the_left_defers_to_tensor():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    y = np.array([3.0, 4.0], dtype=np.float32) * x
    assert isinstance(y, mg.Tensor)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 4.0])


def test_python_scalars_keep_the_tensor_dtype():
    assert (mg.tensor([1.0], dtype=np.float64) * 0.5).dtype == np.float64
    assert (mg.tensor([1.0]) * 0.5).dtype == np.float32
    assert (mg.tensor([1.0]) + 1).dtype == np.float32
    assert (mg.arange(3) + 1).dtype == np.int64


@pytest.mark.parametrize("name, fn", [("relu", lambda a, b: a.relu() * b), ("add", lambda a, b: a + b)])
def test_compiled_path_for_large_arrays_matches_torch(name, fn):
    """Arrays of 4096+ elements take the multithreaded kernels of csrc/eltwise.cpp (smaller
    ones stay in numpy); their values and gradients equal PyTorch's too."""
    from minigrad.ops.elementwise import _COMPILED_MIN_SIZE

    shape = (3, _COMPILED_MIN_SIZE // 2 + 1)
    check_parity(OpCase(fn, fn, [shape, shape], samplers=[away_from_zero]))  # no input on relu's kink
