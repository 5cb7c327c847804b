"""Each conv/pool/transform argument rule has one home, so every entry point (functional,
layer, op) raises the same error for it, with the same message."""

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn as nn
import minigrad.nn.functional as F
from minigrad import _C
from minigrad._args import pair
from minigrad.data import transforms as T
from minigrad.ops.conv import Conv2d as Conv2dOp
from minigrad.ops.pool import AvgPool2d as AvgPoolOp
from minigrad.ops.pool import MaxPool2d as MaxPoolOp


def error_of(call):
    with pytest.raises((TypeError, ValueError)) as info:
        call()
    return type(info.value), str(info.value)


def same_error(*calls):
    errors = {error_of(call) for call in calls}
    assert len(errors) == 1, errors
    return errors.pop()


def conv_layer(x, in_channels=2, out_channels=4, kernel_size=3, **kw):
    layer = nn.Conv2d(in_channels, out_channels, kernel_size, **kw)
    return layer(x)


@pytest.mark.parametrize(
    "kw, words",
    [
        ({"stride": 0}, r"Conv2d: stride \(0, 0\) and dilation \(1, 1\) must be >= 1"),
        ({"padding": (-1, 0)}, r"padding \(-1, 0\) >= 0"),
        ({"dilation": (1, 0)}, r"dilation \(1, 0\) must be >= 1"),
        ({"dilation": 9}, r"Conv2d: kernel \(3, 3\) with dilation \(9, 9\) is larger than input \(1, 2, 6, 6\)"),
    ],
)
def test_conv_geometry_rules_raise_the_same_error_everywhere(kw, words):
    x = mg.zeros((1, 2, 6, 6))
    w = mg.zeros((4, 2, 3, 3))
    geometry = {
        name: pair(kw.get(name, default), name, "Conv2d")
        for name, default in (("stride", 1), ("padding", 0), ("dilation", 1))
    }
    kind, message = same_error(
        lambda: F.conv2d(x, w, **kw), lambda: conv_layer(x, **kw), lambda: Conv2dOp.apply(x, w, **geometry, groups=1)
    )
    assert kind is ValueError and __import__("re").search(words, message), message


def test_conv_groups_rule_raises_the_same_error_everywhere():
    x, w = mg.zeros((1, 3, 6, 6)), mg.zeros((4, 2, 3, 3))
    kind, message = same_error(
        lambda: F.conv2d(x, w),
        lambda: Conv2dOp.apply(x, w, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1),
        lambda: _C.conv2d_output_shape(x.shape, w.shape, (1, 1), (0, 0), (1, 1), 1, op="Conv2d"),
    )
    assert kind is ValueError and "weight (4, 2, 3, 3) does not fit input (1, 3, 6, 6) with groups=1" in message


@pytest.mark.parametrize(
    "value, kind, words",
    [
        ((1, 2, 3), TypeError, "Conv2d: stride must be an int or a pair of ints, got (1, 2, 3)"),
        (1.5, TypeError, "Conv2d: stride must be an int or a pair of ints, got 1.5"),
        (True, TypeError, "Conv2d: stride must be an int or a pair of ints, got True"),
        (2**64, ValueError, "Conv2d: stride (18446744073709551616, 18446744073709551616) is too large"),
    ],
)
def test_conv_stride_parsing_is_the_same_everywhere(value, kind, words):
    x, w = mg.zeros((1, 2, 6, 6)), mg.zeros((4, 2, 3, 3))
    got, message = same_error(lambda: F.conv2d(x, w, stride=value), lambda: conv_layer(x, stride=value))
    assert got is kind and message.startswith(words), message


@pytest.mark.parametrize(
    "functional, layer, op, name",
    [
        (F.max_pool2d, nn.MaxPool2d, MaxPoolOp, "MaxPool2d"),
        (F.avg_pool2d, nn.AvgPool2d, AvgPoolOp, "AvgPool2d"),
    ],
)
@pytest.mark.parametrize(
    "kernel, stride, padding, words",
    [
        (3, 3, 2, "padding (2, 2) between 0 and half the kernel size"),
        (0, 1, 0, "kernel_size (0, 0) and stride (1, 1) must be >= 1"),
        (3, 0, 0, "kernel_size (3, 3) and stride (0, 0) must be >= 1"),
        (9, 1, 0, "kernel_size (9, 9) is larger than input (1, 2, 4, 4) padded by (0, 0)"),
    ],
)
def test_pool_window_rules_raise_the_same_error_everywhere(functional, layer, op, name, kernel, stride, padding, words):
    x = mg.zeros((1, 2, 4, 4))
    window = {"kernel_size": (kernel, kernel), "stride": (stride, stride), "padding": (padding, padding)}
    kind, message = same_error(
        lambda: functional(x, kernel, stride, padding),
        lambda: layer(kernel, stride, padding)(x),
        lambda: op.apply(x, **window),
    )
    assert kind is ValueError and message.startswith(f"{name}: ") and words in message, message


def test_pool_parsing_is_the_same_everywhere():
    x = mg.zeros((1, 2, 4, 4))
    kind, message = same_error(lambda: F.max_pool2d(x, "2"), lambda: nn.MaxPool2d("2")(x))
    assert kind is TypeError and message == "MaxPool2d: kernel_size must be an int or a pair of ints, got '2'"


def test_adaptive_output_size_is_parsed_by_the_shared_parser():
    x = mg.zeros((1, 2, 4, 4))
    kind, message = same_error(lambda: F.adaptive_avg_pool2d(x, 0), lambda: nn.AdaptiveAvgPool2d(0)(x))
    assert kind is ValueError and message == "AdaptiveAvgPool2d: output_size must be >= 1, got 0"
    kind, message = error_of(lambda: F.adaptive_avg_pool2d(x, 2.0))
    assert kind is TypeError and "output_size must be an int or a pair of ints (or None)" in message
    assert F.adaptive_avg_pool2d(x, (None, 2)).shape == (1, 2, 4, 2)


@pytest.mark.parametrize(
    "make, op", [(T.Resize, "Resize"), (T.RandomCrop, "RandomCrop"), (T.RandomResizedCrop, "RandomResizedCrop")]
)
def test_transform_sizes_use_the_shared_parser(make, op):
    assert error_of(lambda: make(0)) == (ValueError, f"{op}: size must be >= 1, got 0")
    assert error_of(lambda: make((4, -1))) == (ValueError, f"{op}: size must be >= 1, got (4, -1)")
    assert error_of(lambda: make(2.5)) == (TypeError, f"{op}: size must be an int or a pair of ints, got 2.5")
    assert make(np.int64(3)).size == (3, 3)


def test_pair_parser():
    assert pair(3, "k", "Op") == (3, 3)
    assert pair([np.int32(2), 5], "k", "Op") == (2, 5)
    assert pair(-1, "padding", "Op") == (-1, -1)  # no minimum: the range is the op's rule
    for bad in ("ab", b"ab", None, (1,), (1, 2, 3), (1.0, 2), {1: 2}):
        with pytest.raises(TypeError, match="Op: k must be an int or a pair of ints"):
            pair(bad, "k", "Op")
    with pytest.raises(ValueError, match="Op: k must be >= 2, got 1"):
        pair(1, "k", "Op", minimum=2)
