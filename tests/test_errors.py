"""Bad input gets a clear exception naming the op and the shapes, raised before anything is
half done: shape mismatches, dtypes, misuse of backward, in-place changes the tape would miss,
and the compiled layer's argument checks."""

import re

import numpy as np
import pytest

import minigrad as mg
from minigrad import _C
from minigrad.autograd import Function


def shapes_named(*shapes):
    """A regex matching a message that mentions every shape, in any order."""
    return "".join(f"(?=.*{re.escape(str(s))})" for s in shapes)


# ---------------------------------------------------------------------------- shape mismatches
@pytest.mark.parametrize(
    "a, b",
    [((2, 3), (4, 5)), ((3,), (4,)), ((2, 3), (4,)), ((3,), (4, 2)), ((2, 3, 4), (2, 5, 6)), ((5, 3), (2, 4, 4))],
)
def test_matmul_mismatch_names_both_shapes_and_the_op(a, b):
    with pytest.raises(ValueError, match="MatMul" + shapes_named(a, b)):
        mg.randn(*a) @ mg.randn(*b)


def test_matmul_batch_mismatch():
    with pytest.raises(ValueError, match=r"MatMul" + shapes_named((2, 3, 4), (5, 4, 2))):
        mg.randn(2, 3, 4) @ mg.randn(5, 4, 2)


def test_matmul_of_a_scalar():
    with pytest.raises(ValueError, match="MatMul"):
        mg.tensor(2.0) @ mg.randn(2, 2)


@pytest.mark.parametrize(
    "op, name",
    [
        (lambda a, b: a + b, "Add"),
        (lambda a, b: a - b, "Sub"),
        (lambda a, b: a * b, "Mul"),
        (lambda a, b: a / b, "Div"),
        (mg.maximum, "Maximum"),
        (lambda a, b: mg.where(a > 0, a, b), "Where"),
    ],
)
def test_broadcast_mismatch_names_both_shapes_and_the_op(op, name):
    with pytest.raises(ValueError, match=name + shapes_named((3, 4), (5,))):
        op(mg.randn(3, 4), mg.randn(5))


def test_reshape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match="Reshape" + shapes_named((2, 3), (4,))):
        mg.randn(2, 3).reshape(4)


@pytest.mark.parametrize(
    "call, pattern",
    [
        (lambda: mg.randn(3, 2).expand(3, 4), "Expand" + shapes_named((3, 2), (3, 4))),
        (lambda: mg.concat([mg.randn(2, 3), mg.randn(3, 4)], axis=0), "Concat" + shapes_named((2, 3), (3, 4))),
        (lambda: mg.randn(2, 3).permute(0, 0), r"Permute.*\(2, 3\)"),
        (lambda: mg.pad(mg.randn(2, 3), ((1, 1),) * 3), r"Pad.*\(2, 3\)"),
        (lambda: mg.pad(mg.randn(2, 3), -1), r"Pad.*\(2, 3\)"),
        (lambda: mg.concat([]), "Concat"),
    ],
)
def test_other_shape_errors_name_the_op_and_shapes(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()


# ---------------------------------------------------------------------------------- dtypes
@pytest.mark.parametrize(
    "data", [np.zeros(3, np.float16), np.zeros(3, np.complex64), np.array(["a", "b"]), np.zeros(2, np.uint16)]
)
def test_unsupported_dtypes_raise_type_error(data):
    with pytest.raises(TypeError, match="unsupported dtype"):
        mg.tensor(data)
    with pytest.raises(TypeError, match="unsupported dtype"):
        mg.from_numpy(data)


def test_only_float_tensors_can_require_grad():
    with pytest.raises(TypeError, match="float32/float64"):
        mg.tensor([1, 2, 3], requires_grad=True)


@pytest.mark.parametrize("a, b", [(np.float32, np.float64), (np.int64, np.int64), (np.int32, np.float32)])
def test_matmul_dtype_errors(a, b):
    with pytest.raises(TypeError, match="MatMul"):
        mg.ones(2, 2, dtype=a) @ mg.ones(2, 2, dtype=b)


# --------------------------------------------------------------------------- backward misuse
def test_backward_on_a_non_scalar_says_what_to_pass():
    y = mg.randn(3, requires_grad=True) * 2
    with pytest.raises(RuntimeError, match=r"shape \(3,\).*backward\(grad\)"):
        y.backward()


def test_backward_with_a_gradient_of_the_wrong_shape():
    y = mg.randn(3, requires_grad=True) * 2
    with pytest.raises(ValueError, match=shapes_named((4,), (3,))):
        y.backward(np.ones(4))


def test_backward_without_a_graph():
    with pytest.raises(RuntimeError, match="does not require grad"):
        mg.randn(3).sum().backward()


def test_backward_twice_without_retain_graph():
    x = mg.randn(3, requires_grad=True)
    loss = (x.exp() * x).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        loss.backward()


def test_a_backward_that_returns_the_wrong_shape_is_named():
    class Broken(Function):
        def forward(self, x):
            return x * 2

        def backward(self, g):
            return np.ones(7)

    with pytest.raises(RuntimeError, match=r"Broken.backward.*\(7,\).*\(3,\)"):
        Broken.apply(mg.randn(3, requires_grad=True)).sum().backward()


# ------------------------------------------------------------------- in-place modifications
def test_in_place_api_refuses_tensors_that_require_grad_outside_no_grad():
    x = mg.randn(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="no_grad"):
        x.add_(1.0)
    with pytest.raises(RuntimeError, match="no_grad"):
        x[0] = 2.0


@pytest.mark.parametrize(
    "modify",
    [
        lambda x: x.mul_(2.0),  # the leaf itself, under no_grad
        lambda x: x.detach().add_(1.0),  # a detached alias shares the version counter
        lambda x: x.detach().reshape(6).zero_(),  # ... and so do views of it
        lambda x: x.detach()[0].fill_(5.0),
    ],
)
def test_modifying_an_input_the_tape_saved_is_detected(modify):
    x = mg.randn(2, 3, requires_grad=True)
    loss = (x * x).sum()  # Mul saved x
    with mg.no_grad():
        modify(x)
    with pytest.raises(RuntimeError, match=r"input \d of Mul was modified in place.*version 0 -> 1"):
        loss.backward()
    assert x.grad is None  # refused before any gradient was written


def test_modifying_a_constant_operand_is_detected():
    w = mg.randn(3)  # no grad, but Mul needs it to differentiate x
    x = mg.randn(3, requires_grad=True)
    loss = (x * w).sum()
    w += 1.0
    with pytest.raises(RuntimeError, match="input 1 of Mul"):
        loss.backward()


def test_modifying_an_output_that_backward_needs_is_detected():
    x = mg.randn(3, requires_grad=True)
    y = x.exp()  # Exp's backward reuses its output
    with mg.no_grad():
        y.mul_(2.0)
    with pytest.raises(RuntimeError, match="the output of Exp"):
        y.sum().backward()


def test_a_change_made_before_recording_is_fine():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    with mg.no_grad():
        x.mul_(3.0)
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [6.0, 12.0])


# ------------------------------------------------------------------------ the compiled layer
def gemm_args(dtype=np.float32, batch=1, m=3, n=4, k=5):
    return (np.ones((batch, m, k), dtype), np.ones((batch, k, n), dtype), np.full((batch, m, n), 7, dtype))


@pytest.mark.parametrize("gemm", [_C.gemm, _C.ref.gemm], ids=["gemm", "ref.gemm"])
@pytest.mark.parametrize(
    "break_args, error, pattern",
    [
        (lambda a, b, c: (a.astype(np.int32), b, c), TypeError, r"\ba must be float32, got int32"),
        (lambda a, b, c: (a, b.astype(np.float64), c), TypeError, r"\bb must be float32, got float64"),
        (lambda a, b, c: (a, b, c.astype(np.float16)), TypeError, r"\bout must be float32 or float64, got float16"),
        (
            lambda a, b, c: (np.ones((1, 5, 3), np.float32).transpose(0, 2, 1), b, c),
            ValueError,
            r"\ba must be C-contiguous",
        ),
        (lambda a, b, c: (a, np.ones((1, 5, 8), np.float32)[:, :, ::2], c), ValueError, r"\bb must be C-contiguous"),
        (lambda a, b, c: (a[0], b, c), ValueError, r"\ba must have 3 dimensions, got shape \(3, 5\)"),
        (lambda a, b, c: (a, b, c[:, :2]), ValueError, r"\bout has shape \(1, 2, 4\)"),
        (lambda a, b, c: (a, np.ones((1, 6, 4), np.float32), c), ValueError, r"cannot multiply"),
        (
            lambda a, b, c: (np.ones((2, 3, 5), np.float32), np.ones((3, 5, 4), np.float32), c),
            ValueError,
            r"cannot multiply",
        ),
        (lambda a, b, c: (a, b, np.full((1, 3, 4), 7, np.float32)[:, :, :]), None, None),  # a valid call
    ],
)
def test_gemm_validates_arguments_before_touching_memory(gemm, break_args, error, pattern):
    a, b, c = break_args(*gemm_args())
    before = c.copy()
    if error is None:
        gemm(a, b, c)
        np.testing.assert_array_equal(c, np.full((1, 3, 4), 5.0))
        return
    with pytest.raises(error, match=pattern):
        gemm(a, b, c)
    np.testing.assert_array_equal(c, before)


def test_gemm_refuses_a_read_only_output():
    a, b, c = gemm_args()
    c.flags.writeable = False
    with pytest.raises(ValueError, match="out must be writeable"):
        _C.gemm(a, b, c)
    np.testing.assert_array_equal(c, 7.0)


def test_gemm_does_not_convert_lists():
    with pytest.raises(TypeError):
        _C.gemm([[[1.0]]], [[[1.0]]], np.zeros((1, 1, 1), np.float32))


def test_set_num_threads_rejects_non_positive_counts():
    with pytest.raises(ValueError, match="positive"):
        mg.set_num_threads(0)
