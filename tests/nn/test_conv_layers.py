"""Conv2d, pooling and the skip-connection blocks against PyTorch, plus float64 gradchecks."""

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn

import torch_twins
from module_parity import check_module_parity, module_gradcheck, torch

T = torch.nn


def x_of(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(),
        dict(stride=2, padding=1),
        dict(padding=2, dilation=2),
        dict(bias=False, padding=(1, 0)),
        dict(groups=2, padding=1),
    ],
    ids=["plain", "stride-pad", "dilation", "no-bias-asym-pad", "groups"],
)
def test_conv2d_matches_pytorch(kwargs):
    ours, theirs = nn.Conv2d(4, 6, 3, **kwargs), T.Conv2d(4, 6, 3, **kwargs)
    for training in (True, False):
        check_module_parity(ours, theirs, x_of(2, 4, 9, 8), training)
    module_gradcheck(nn.Conv2d(4, 2, 3, **kwargs), (1, 4, 6, 5))


@pytest.mark.parametrize(
    "ours,theirs",
    [
        (nn.MaxPool2d(2), T.MaxPool2d(2)),
        (nn.MaxPool2d(3, stride=2, padding=1), T.MaxPool2d(3, stride=2, padding=1)),
        (nn.AvgPool2d(2), T.AvgPool2d(2)),
        (nn.AvgPool2d(3, stride=2, padding=1), T.AvgPool2d(3, stride=2, padding=1)),
        (nn.AdaptiveAvgPool2d(1), T.AdaptiveAvgPool2d(1)),
    ],
    ids=["max2", "max3-s2-p1", "avg2", "avg3-s2-p1", "global-avg"],
)
def test_pooling_matches_pytorch(ours, theirs):
    check_module_parity(ours, theirs, x_of(2, 3, 8, 8))
    module_gradcheck(ours, (1, 2, 6, 6))


def test_conv2d_repr_and_shape_errors():
    assert (
        repr(nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False))
        == "Conv2d(3, 8, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), bias=False)"
    )
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(TypeError, match="Conv2d: kernel_size must be an int or a pair of ints"):
        nn.Conv2d(3, 4, (3, 3, 3))


@pytest.mark.parametrize("cin,cout,stride", [(4, 4, 1), (4, 8, 2)], ids=["identity", "projection"])
def test_basic_block_matches_pytorch(cin, cout, stride):
    ours, theirs = nn.BasicBlock(cin, cout, stride), torch_twins.BasicBlock(cin, cout, stride)
    assert (ours.downsample is None) == (stride == 1)
    check_module_parity(ours, theirs, x_of(2, cin, 6, 6), training=True, steps=2)
    check_module_parity(ours, theirs, x_of(2, cin, 6, 6, seed=1), training=False)
    out = ours(mg.randn(2, cin, 6, 6))
    assert out.shape == (2, cout, 6 // stride, 6 // stride)


def test_basic_block_gradcheck():
    module_gradcheck(nn.BasicBlock(2, 3, 2), (2, 2, 4, 4), atol=1e-5)


@pytest.mark.parametrize("bottleneck", [None, 2], ids=["plain", "bottleneck"])
def test_dense_block_grows_channels_and_matches_pytorch(bottleneck):
    ours, theirs = nn.DenseBlock(3, 4, 2, bottleneck), torch_twins.DenseBlock(3, 4, 2, bottleneck)
    assert ours.out_channels == 4 + 3 * 2
    x = x_of(2, 4, 5, 5)
    out = ours(mg.tensor(x.astype(np.float32)))
    assert out.shape == (2, 10, 5, 5)
    np.testing.assert_array_equal(out.numpy()[:, :4], x.astype(np.float32))  # the input passes through
    check_module_parity(ours, theirs, x, training=True)
    check_module_parity(ours, theirs, x, training=False)


def test_transition_halves_the_map_and_matches_pytorch():
    ours, theirs = nn.Transition(6, 3), torch_twins.Transition(6, 3)
    assert ours(mg.randn(2, 6, 8, 8)).shape == (2, 3, 4, 4)
    check_module_parity(ours, theirs, x_of(2, 6, 8, 8), training=True)


def test_drop_connect_wraps_a_conv_layer():
    conv = nn.Conv2d(2, 3, 3)
    wrapped = nn.DropConnect(conv, p=0.5)
    x = mg.randn(1, 2, 5, 5)
    assert not np.allclose(wrapped(x).numpy(), conv(x).numpy())
    wrapped.eval()
    np.testing.assert_array_equal(wrapped(x).numpy(), conv(x).numpy())
