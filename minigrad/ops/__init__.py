"""Differentiable ops as plain functions. Each calls exactly one ``Function`` (defined, with
its backward, in the sibling modules) or composes a few of them."""
from __future__ import annotations

import builtins

import numpy as np

from ..autograd import Function
from .conv import Conv2d, pair
from .elementwise import (Abs, Add, Cast, Clip, Div, Exp, LeakyReLU, Log, Maximum, Minimum, Mul, Neg,
                          Pow, ReLU, Sigmoid, Sqrt, Sub, Tanh, Where, equal, greater, greater_equal,
                          less, less_equal, not_equal)
from .linalg import MatMul
from .loss import BCEWithLogits, CrossEntropy, NLLLoss
from .reduce import LogSoftmax, LogSumExp, Max, Mean, Min, Softmax, Std, Sum, Var
from .norm import BatchNorm, Normalize, batch_norm, group_norm, instance_norm, layer_norm
from .pool import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d, window_options
from .shape import Concat, Expand, GetItem, Pad, Permute, Reshape


def _axis(axis, dim):
    """Reductions take numpy's ``axis`` or PyTorch's ``dim``."""
    return dim if axis is None else axis


def add(x, y): return Add.apply(x, y)
def sub(x, y): return Sub.apply(x, y)
def mul(x, y): return Mul.apply(x, y)
def div(x, y): return Div.apply(x, y)
def pow(x, y): return Pow.apply(x, y)  # noqa: A001 - mirrors torch.pow
def neg(x): return Neg.apply(x)
def abs(x): return Abs.apply(x)  # noqa: A001
def exp(x): return Exp.apply(x)
def log(x): return Log.apply(x)
def sqrt(x): return Sqrt.apply(x)
def clip(x, min=None, max=None): return Clip.apply(x, low=min, high=max)  # noqa: A002
def maximum(x, y): return Maximum.apply(x, y)
def minimum(x, y): return Minimum.apply(x, y)
def where(cond, x, y): return Where.apply(cond, x, y)
def cast(x, dtype): return Cast.apply(x, dtype=np.dtype(dtype))
def relu(x): return ReLU.apply(x)
def leaky_relu(x, negative_slope=0.01): return LeakyReLU.apply(x, negative_slope=negative_slope)
def sigmoid(x): return Sigmoid.apply(x)
def tanh(x): return Tanh.apply(x)
def softmax(x, axis=None, dim=None): return Softmax.apply(x, axis=_axis(axis, dim) if _axis(axis, dim) is not None else -1)
def log_softmax(x, axis=None, dim=None): return LogSoftmax.apply(x, axis=_axis(axis, dim) if _axis(axis, dim) is not None else -1)


def matmul(x, y):
    """Matrix product with numpy semantics; 1-D operands are promoted and the added axis removed."""
    from ..tensor import Tensor

    x, y = (t if isinstance(t, Tensor) else Tensor(t) for t in (x, y))
    if x.ndim == 0 or y.ndim == 0:
        raise ValueError(f"MatMul: operands must have at least one dimension, got {x.shape} and {y.shape}")
    if x.shape[-1] != y.shape[-2 if y.ndim > 1 else 0]:  # checked here to name the shapes the user passed
        raise ValueError(f"MatMul: shapes {x.shape} and {y.shape} are not aligned "
                         f"(inner dimensions {x.shape[-1]} vs {y.shape[-2 if y.ndim > 1 else 0]})")
    x2 = reshape(x, (1, x.shape[0])) if x.ndim == 1 else x
    y2 = reshape(y, (y.shape[0], 1)) if y.ndim == 1 else y
    out = MatMul.apply(x2, y2)
    if x.ndim == 1:
        out = squeeze(out, -2)
    if y.ndim == 1:
        out = squeeze(out, -1)
    return out


def sum(x, axis=None, keepdims=False, dim=None): return Sum.apply(x, axis=_axis(axis, dim), keepdims=keepdims)  # noqa: A001
def mean(x, axis=None, keepdims=False, dim=None): return Mean.apply(x, axis=_axis(axis, dim), keepdims=keepdims)
def max(x, axis=None, keepdims=False, dim=None): return Max.apply(x, axis=_axis(axis, dim), keepdims=keepdims)  # noqa: A001
def min(x, axis=None, keepdims=False, dim=None): return Min.apply(x, axis=_axis(axis, dim), keepdims=keepdims)  # noqa: A001
def logsumexp(x, axis=None, keepdims=False, dim=None): return LogSumExp.apply(x, axis=_axis(axis, dim), keepdims=keepdims)


def var(x, axis=None, correction=1, keepdims=False, dim=None):
    """Variance with Bessel's ``correction`` (1: unbiased, 0: population)."""
    return Var.apply(x, axis=_axis(axis, dim), correction=correction, keepdims=keepdims)


def std(x, axis=None, correction=1, keepdims=False, dim=None):
    """Standard deviation, sqrt of ``var``; its gradient is 0 where it is 0 (as PyTorch)."""
    return Std.apply(x, axis=_axis(axis, dim), correction=correction, keepdims=keepdims)


def argmax(x, axis=None, keepdims=False, dim=None):
    """Index of the maximum (no gradient)."""
    from ..tensor import Tensor

    return Tensor(np.argmax(getattr(x, "data", x), axis=_axis(axis, dim), keepdims=keepdims).astype(np.int64))


# ---- shapes
def reshape(x, shape): return Reshape.apply(x, shape=tuple(shape))
def permute(x, axes): return Permute.apply(x, axes=tuple(axes))
def expand(x, shape): return Expand.apply(x, shape=tuple(shape))
broadcast_to = expand


def transpose(x, dim0=None, dim1=None):
    """Swaps two axes; with no axes given reverses them all (``x.T``)."""
    axes = list(range(x.ndim))[::-1]
    if dim0 is not None:
        axes = list(range(x.ndim))
        axes[dim0], axes[dim1] = axes[dim1], axes[dim0]
    return permute(x, axes)


def flatten(x, start_dim=0, end_dim=-1):
    start, end = start_dim % builtins.max(x.ndim, 1), end_dim % builtins.max(x.ndim, 1)
    return reshape(x, x.shape[:start] + (-1,) + x.shape[end + 1:])


def squeeze(x, axis=None, dim=None):
    axis = _axis(axis, dim)
    axes = [a % x.ndim for a in ((axis,) if isinstance(axis, int) else axis)] if axis is not None else None
    return reshape(x, [n for i, n in enumerate(x.shape) if not (n == 1 and (axes is None or i in axes))])


def unsqueeze(x, axis=None, dim=None):
    axis = _axis(axis, dim)
    axis = axis % (x.ndim + 1)
    return reshape(x, x.shape[:axis] + (1,) + x.shape[axis:])


def _plain_index(index):
    from ..tensor import Tensor

    if isinstance(index, tuple):
        return tuple(_plain_index(i) for i in index)
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, list):
        return np.asarray(index)
    return index


def getitem(x, index): return GetItem.apply(x, index=_plain_index(index))


def concat(tensors, axis=0, dim=None): return Concat.apply(*tensors, axis=axis if dim is None else dim)
cat = concat


def stack(tensors, axis=0, dim=None):
    axis = dim if dim is not None else axis
    return concat([unsqueeze(t, axis) for t in tensors], axis=axis)


def pad(x, pad_width, value=0.0):
    """Constant padding. ``pad_width`` is numpy's: an int, (before, after), or one pair per axis."""
    width = np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (x.ndim, 2)) if np.ndim(pad_width) < 2 else np.asarray(pad_width)
    if width.shape != (x.ndim, 2) or (width < 0).any():
        raise ValueError(f"Pad: pad_width {pad_width!r} does not fit a tensor of shape {x.shape}")
    return Pad.apply(x, pad_width=tuple(map(tuple, width.tolist())), value=value)


# ---- convolution and pooling (NCHW), PyTorch's signatures
def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):  # noqa: A002
    """Cross-correlation of ``input`` (N, C_in, H, W) with ``weight`` (C_out, C_in/groups, kH, kW)."""
    geometry = dict(stride=pair(stride, "stride", "Conv2d"), padding=pair(padding, "padding", "Conv2d"),
                    dilation=pair(dilation, "dilation", "Conv2d"), groups=int(groups))
    operands = (input, weight) if bias is None else (input, weight, bias)
    return Conv2d.apply(*operands, **geometry)


def max_pool2d(input, kernel_size, stride=None, padding=0):  # noqa: A002
    return MaxPool2d.apply(input, **window_options("MaxPool2d", kernel_size, stride, padding))


def avg_pool2d(input, kernel_size, stride=None, padding=0):  # noqa: A002
    return AvgPool2d.apply(input, **window_options("AvgPool2d", kernel_size, stride, padding))


def adaptive_avg_pool2d(input, output_size):  # noqa: A002
    """``output_size``: an int, or a pair whose None entries keep the input's size."""
    size = pair(output_size, "output_size", "AdaptiveAvgPool2d", minimum=1, none_ok=True)
    return AdaptiveAvgPool2d.apply(input, output_size=size)


__all__ = [name for name in dir() if not name.startswith("_") and name not in ("np", "builtins", "annotations", "pair", "window_options")]
