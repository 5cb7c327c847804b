"""Conv2d through the op harness: float64 gradcheck, PyTorch parity and the bfloat16 autocast mode
on small shapes that cover stride, padding, dilation, groups, 1x1 kernels, batch 1 and every
kernel algorithm."""

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn.functional as F

from harness import OpCase, check_op, torch


def conv_case(x_shape, w_shape, bias=True, **geometry):
    shapes = [x_shape, w_shape] + ([(w_shape[0],)] if bias else [])
    tf = (lambda *a: torch.nn.functional.conv2d(*a, **geometry)) if torch else None
    terms = w_shape[1] * w_shape[2] * w_shape[3] + bias  # products (and bias) per output value
    return OpCase(lambda *a: F.conv2d(*a, **geometry), tf, shapes, atol=1e-4, rtol=1e-4, autocast_terms=terms)


CASES = {
    # few input channels, stride 1: the direct kernel
    "lenet_like_pad2": conv_case((2, 1, 9, 9), (3, 1, 5, 5), padding=2),
    "direct_rect_dilated": conv_case((1, 3, 7, 13), (5, 3, 3, 2), padding=(1, 2), dilation=(2, 1)),
    "direct_wide_rows_no_bias": conv_case((2, 9, 5, 17), (2, 9, 3, 3), bias=False, padding=1),
    # at least 16 output channels (and 16 input channels for dX): vectors along channels
    "chanvec_all_passes": conv_case((2, 16, 4, 5), (16, 16, 3, 3), padding=1),
    "chanvec_stride2_dilated": conv_case(
        (2, 3, 9, 8), (16, 3, 3, 2), bias=False, stride=2, padding=(2, 1), dilation=(2, 1)
    ),
    # many input channels or stride 2: im2col + GEMM
    "gemm_stride2_pad1": conv_case((2, 9, 7, 6), (4, 9, 3, 3), stride=2, padding=1),
    "gemm_dilation2_pad2": conv_case((1, 10, 7, 7), (3, 10, 3, 3), padding=2, dilation=2),
    "gemm_odd_stride_no_bias": conv_case((2, 3, 13, 7), (7, 3, 3, 2), bias=False, stride=(2, 1), padding=(1, 0)),
    "pointwise": conv_case((2, 4, 5, 3), (3, 4, 1, 1)),
    "pointwise_stride2": conv_case((1, 4, 5, 5), (6, 4, 1, 1), bias=False, stride=2),
    "groups2": conv_case((2, 4, 5, 5), (6, 2, 3, 3), padding=1, groups=2),
    "depthwise": conv_case((1, 3, 6, 5), (3, 1, 3, 3), padding=1, groups=3),
    "one_pixel": conv_case((1, 2, 1, 1), (3, 2, 1, 1)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_conv2d(name):
    check_op(CASES[name])


def test_first_layer_skips_input_gradient():
    """An input without requires_grad gets no gradient; the weight's is still right."""
    rng = np.random.default_rng(3)
    x = mg.tensor(rng.standard_normal((2, 1, 6, 6)))
    w = mg.tensor(rng.standard_normal((2, 1, 3, 3)), requires_grad=True)
    F.conv2d(x, w, padding=1).sum().backward()
    assert x.grad is None
    # d(sum y)/dW[o, 0, u, v] = sum of the input pixels that tap (u, v) reads
    padded = np.pad(x.numpy(), ((0, 0), (0, 0), (1, 1), (1, 1)))
    expected = np.array([[padded[:, 0, u : u + 6, v : v + 6].sum() for v in range(3)] for u in range(3)])
    np.testing.assert_allclose(w.grad.numpy()[0, 0], expected, rtol=1e-10)
    np.testing.assert_allclose(w.grad.numpy()[1, 0], expected, rtol=1e-10)


def test_hand_computed_value():
    x = mg.tensor(np.arange(9.0).reshape(1, 1, 3, 3))
    w = mg.tensor(np.array([[[[1.0, 0.0], [0.0, -1.0]]]]))
    y = F.conv2d(x, w, bias=mg.tensor(np.array([0.5])))
    np.testing.assert_array_equal(y.numpy(), np.full((1, 1, 2, 2), -4.0 + 0.5))


@pytest.mark.parametrize(
    "x_shape, w_shape, kwargs, match",
    [
        ((2, 3, 8, 8), (4, 2, 3, 3), {}, r"weight \(4, 2, 3, 3\) does not fit input \(2, 3, 8, 8\)"),
        ((2, 4, 8, 8), (3, 2, 3, 3), {"groups": 2}, "C_out divisible by groups"),
        ((3, 8, 8), (4, 3, 3, 3), {}, r"input \(3, 8, 8\)"),
        ((1, 1, 2, 2), (1, 1, 3, 3), {}, "larger than input"),
        ((1, 1, 5, 5), (1, 1, 3, 3), {"stride": 0}, "stride"),
    ],
)
def test_bad_shapes_raise(x_shape, w_shape, kwargs, match):
    x, w = mg.zeros(x_shape), mg.zeros(w_shape)
    with pytest.raises(ValueError, match=match):
        F.conv2d(x, w, **kwargs)


def test_bad_bias_and_dtypes_raise():
    x, w = mg.zeros((1, 2, 5, 5)), mg.zeros((3, 2, 3, 3))
    with pytest.raises(ValueError, match=r"bias must have shape \(3,\)"):
        F.conv2d(x, w, mg.zeros((2,)))
    with pytest.raises(TypeError, match="must all be float32, all float64 or all bfloat16"):
        F.conv2d(x, w.double())
    with pytest.raises(TypeError, match="pair of ints"):
        F.conv2d(x, w, stride=(1, 2, 3))
