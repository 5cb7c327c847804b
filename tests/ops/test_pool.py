"""Pooling ops through the op harness. Max-pool inputs are distinct values at least 0.05 apart
(a shuffled grid), so no window has a near-tie and finite differences never cross a kink."""

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn.functional as F

from harness import OpCase, check_op, torch


def distinct(rng, shape):
    values = rng.permutation(int(np.prod(shape))) * 0.05 - 1.0
    return values.reshape(shape)


def pool_case(fn, torch_name, shape, max_pool=False, **kwargs):
    tf = (lambda x: getattr(torch.nn.functional, torch_name)(x, **kwargs)) if torch else None
    return OpCase(lambda x: fn(x, **kwargs), tf, [shape], samplers=[distinct] if max_pool else ())


CASES = {
    "max_2x2": pool_case(F.max_pool2d, "max_pool2d", (2, 3, 6, 8), True, kernel_size=2),
    "max_odd_size": pool_case(F.max_pool2d, "max_pool2d", (1, 2, 7, 5), True, kernel_size=2),
    "max_3x3_stride2_pad1": pool_case(
        F.max_pool2d, "max_pool2d", (2, 2, 7, 7), True, kernel_size=3, stride=2, padding=1
    ),
    "max_overlapping_rect": pool_case(
        F.max_pool2d, "max_pool2d", (1, 3, 5, 6), True, kernel_size=(3, 2), stride=1, padding=(1, 0)
    ),
    "avg_2x2": pool_case(F.avg_pool2d, "avg_pool2d", (2, 3, 6, 6), kernel_size=2),
    "avg_3x3_stride2_pad1": pool_case(F.avg_pool2d, "avg_pool2d", (1, 2, 7, 6), kernel_size=3, stride=2, padding=1),
    "avg_rect_stride1": pool_case(F.avg_pool2d, "avg_pool2d", (2, 1, 5, 4), kernel_size=(2, 3), stride=1),
    "global_avg": pool_case(F.adaptive_avg_pool2d, "adaptive_avg_pool2d", (2, 4, 5, 3), output_size=1),
    "adaptive_avg_3x2": pool_case(F.adaptive_avg_pool2d, "adaptive_avg_pool2d", (1, 2, 7, 5), output_size=(3, 2)),
    "adaptive_avg_keep_width": pool_case(
        F.adaptive_avg_pool2d, "adaptive_avg_pool2d", (1, 2, 5, 4), output_size=(2, None)
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_pool(name):
    check_op(CASES[name])


def test_max_pool_hand_computed():
    x = mg.tensor(np.array([[[[1.0, 5.0, 2.0, 0.0], [3.0, 4.0, 8.0, 7.0]]]]), requires_grad=True)
    y = F.max_pool2d(x, 2)
    np.testing.assert_array_equal(y.numpy(), [[[[5.0, 8.0]]]])
    (y * mg.tensor(np.array([[[[2.0, 3.0]]]]))).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[[[0, 2.0, 0, 0], [0, 0, 3.0, 0]]]])


def test_default_stride_is_kernel_size():
    x = mg.tensor(np.arange(36.0).reshape(1, 1, 6, 6))
    assert F.avg_pool2d(x, 3).shape == (1, 1, 2, 2)
    assert F.max_pool2d(x, 3, stride=1).shape == (1, 1, 4, 4)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda x: F.max_pool2d(x, 3, padding=2), ValueError, "half the kernel size"),
        (lambda x: F.avg_pool2d(x, 0), ValueError, "kernel_size"),
        (lambda x: F.max_pool2d(x, 9), ValueError, r"larger than input \(1, 2, 4, 4\)"),
        (lambda x: F.max_pool2d(x.reshape(2, 4, 4), 2), ValueError, r"\(N, C, H, W\), got shape \(2, 4, 4\)"),
        (lambda x: F.adaptive_avg_pool2d(x, 5), ValueError, "between 1 and the input"),
        (lambda x: F.adaptive_avg_pool2d(x, 0), ValueError, "output_size must be >= 1"),
    ],
)
def test_bad_arguments_raise(call, error, match):
    with pytest.raises(error, match=match):
        call(mg.zeros((1, 2, 4, 4)))
