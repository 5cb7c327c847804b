"""Differentiable ops as plain functions. Each calls exactly one ``Function`` (defined, with
its backward, in the sibling modules) or composes a few of them."""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING, Optional, Union

import numpy as np

from ..autograd import Function
from .conv import Conv2d, pair
from .elementwise import (
    Abs,
    Add,
    Cast,
    Clip,
    Div,
    Exp,
    LeakyReLU,
    Log,
    Maximum,
    Minimum,
    Mul,
    Neg,
    Pow,
    ReLU,
    Sigmoid,
    Sqrt,
    Sub,
    Tanh,
    Where,
    equal,
    greater,
    greater_equal,
    less,
    less_equal,
    not_equal,
)
from .linalg import MatMul
from .loss import BCEWithLogits, CrossEntropy, NLLLoss
from .norm import BatchNorm, Normalize, batch_norm, group_norm, instance_norm, layer_norm
from .pool import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d, window_options
from .reduce import LogSoftmax, LogSumExp, Max, Mean, Min, Softmax, Std, Sum, Var
from .shape import Concat, Expand, GetItem, Pad, Permute, Reshape

if TYPE_CHECKING:  # annotations only: the tensor module imports this package
    from collections.abc import Sequence

    from numpy.typing import ArrayLike, DTypeLike

    from ..tensor import Tensor


# The axes a reduction runs over: one, several, or None for all of them.
Axes = Optional[Union[int, tuple[int, ...]]]  # typing's forms: the alias is evaluated at run time on Python 3.9


def _axis(axis, dim):
    """Reductions take numpy's ``axis`` or PyTorch's ``dim``."""
    return dim if axis is None else axis


def add(x: Tensor | ArrayLike, y: Tensor | ArrayLike) -> Tensor:
    return Add.apply(x, y)


def sub(x: Tensor | ArrayLike, y: Tensor | ArrayLike) -> Tensor:
    return Sub.apply(x, y)


def mul(x: Tensor | ArrayLike, y: Tensor | ArrayLike) -> Tensor:
    return Mul.apply(x, y)


def div(x: Tensor | ArrayLike, y: Tensor | ArrayLike) -> Tensor:
    return Div.apply(x, y)


def pow(x: Tensor | ArrayLike, y: Tensor | ArrayLike) -> Tensor:
    return Pow.apply(x, y)  # shadows the builtin on purpose: mirrors torch.pow


def neg(x: Tensor) -> Tensor:
    return Neg.apply(x)


def abs(x: Tensor) -> Tensor:
    return Abs.apply(x)


def exp(x: Tensor) -> Tensor:
    return Exp.apply(x)


def log(x: Tensor) -> Tensor:
    return Log.apply(x)


def sqrt(x: Tensor) -> Tensor:
    return Sqrt.apply(x)


def clip(x: Tensor, min: float | None = None, max: float | None = None) -> Tensor:
    return Clip.apply(x, low=min, high=max)


def maximum(x: Tensor | ArrayLike, y: Tensor | ArrayLike) -> Tensor:
    return Maximum.apply(x, y)


def minimum(x: Tensor | ArrayLike, y: Tensor | ArrayLike) -> Tensor:
    return Minimum.apply(x, y)


def where(cond: Tensor | ArrayLike, x: Tensor | ArrayLike, y: Tensor | ArrayLike) -> Tensor:
    return Where.apply(cond, x, y)


def cast(x: Tensor, dtype: DTypeLike) -> Tensor:
    return Cast.apply(x, dtype=np.dtype(dtype))


def relu(x: Tensor) -> Tensor:
    return ReLU.apply(x)


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    return LeakyReLU.apply(x, negative_slope=negative_slope)


def sigmoid(x: Tensor) -> Tensor:
    return Sigmoid.apply(x)


def tanh(x: Tensor) -> Tensor:
    return Tanh.apply(x)


def softmax(x: Tensor, axis: int | None = None, dim: int | None = None) -> Tensor:
    return Softmax.apply(x, axis=_axis(axis, dim) if _axis(axis, dim) is not None else -1)


def log_softmax(x: Tensor, axis: int | None = None, dim: int | None = None) -> Tensor:
    return LogSoftmax.apply(x, axis=_axis(axis, dim) if _axis(axis, dim) is not None else -1)


def matmul(x: Tensor | ArrayLike, y: Tensor | ArrayLike) -> Tensor:
    """Matrix product with numpy semantics; 1-D operands are promoted and the added axis removed."""
    from ..tensor import Tensor

    x, y = (t if isinstance(t, Tensor) else Tensor(t) for t in (x, y))
    if x.ndim == 0 or y.ndim == 0:
        raise ValueError(f"MatMul: operands must have at least one dimension, got {x.shape} and {y.shape}")
    if x.shape[-1] != y.shape[-2 if y.ndim > 1 else 0]:  # checked here to name the shapes the user passed
        raise ValueError(
            f"MatMul: shapes {x.shape} and {y.shape} are not aligned "
            f"(inner dimensions {x.shape[-1]} vs {y.shape[-2 if y.ndim > 1 else 0]})"
        )
    x2 = reshape(x, (1, x.shape[0])) if x.ndim == 1 else x
    y2 = reshape(y, (y.shape[0], 1)) if y.ndim == 1 else y
    out = MatMul.apply(x2, y2)
    if x.ndim == 1:
        out = squeeze(out, -2)
    if y.ndim == 1:
        out = squeeze(out, -1)
    return out


def sum(x: Tensor, axis: Axes = None, keepdims: bool = False, dim: Axes = None) -> Tensor:
    return Sum.apply(x, axis=_axis(axis, dim), keepdims=keepdims)


def mean(x: Tensor, axis: Axes = None, keepdims: bool = False, dim: Axes = None) -> Tensor:
    return Mean.apply(x, axis=_axis(axis, dim), keepdims=keepdims)


def max(x: Tensor, axis: Axes = None, keepdims: bool = False, dim: Axes = None) -> Tensor:
    return Max.apply(x, axis=_axis(axis, dim), keepdims=keepdims)


def min(x: Tensor, axis: Axes = None, keepdims: bool = False, dim: Axes = None) -> Tensor:
    return Min.apply(x, axis=_axis(axis, dim), keepdims=keepdims)


def logsumexp(x: Tensor, axis: Axes = None, keepdims: bool = False, dim: Axes = None) -> Tensor:
    return LogSumExp.apply(x, axis=_axis(axis, dim), keepdims=keepdims)


def var(x: Tensor, axis: Axes = None, correction: int = 1, keepdims: bool = False, dim: Axes = None) -> Tensor:
    """Variance with Bessel's ``correction`` (1: unbiased, 0: population)."""
    return Var.apply(x, axis=_axis(axis, dim), correction=correction, keepdims=keepdims)


def std(x: Tensor, axis: Axes = None, correction: int = 1, keepdims: bool = False, dim: Axes = None) -> Tensor:
    """Standard deviation, sqrt of ``var``; its gradient is 0 where it is 0 (as PyTorch)."""
    return Std.apply(x, axis=_axis(axis, dim), correction=correction, keepdims=keepdims)


def argmax(x: Tensor, axis: int | None = None, keepdims: bool = False, dim: int | None = None) -> Tensor:
    """Index of the maximum (no gradient)."""
    from ..tensor import Tensor

    return Tensor(np.argmax(getattr(x, "data", x), axis=_axis(axis, dim), keepdims=keepdims).astype(np.int64))


# ---- shapes
def reshape(x: Tensor, shape: Sequence[int]) -> Tensor:
    return Reshape.apply(x, shape=tuple(shape))


def permute(x: Tensor, axes: Sequence[int]) -> Tensor:
    return Permute.apply(x, axes=tuple(axes))


def expand(x: Tensor, shape: Sequence[int]) -> Tensor:
    return Expand.apply(x, shape=tuple(shape))


broadcast_to = expand


def transpose(x: Tensor, dim0: int | None = None, dim1: int | None = None) -> Tensor:
    """Swaps two axes; with no axes given reverses them all (``x.T``)."""
    axes = list(range(x.ndim))[::-1]
    if dim0 is not None:
        axes = list(range(x.ndim))
        axes[dim0], axes[dim1] = axes[dim1], axes[dim0]
    return permute(x, axes)


def flatten(x: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    start, end = start_dim % builtins.max(x.ndim, 1), end_dim % builtins.max(x.ndim, 1)
    return reshape(x, x.shape[:start] + (-1,) + x.shape[end + 1 :])


def squeeze(x: Tensor, axis: Axes = None, dim: Axes = None) -> Tensor:
    axis = _axis(axis, dim)
    axes = [a % x.ndim for a in ((axis,) if isinstance(axis, int) else axis)] if axis is not None else None
    return reshape(x, [n for i, n in enumerate(x.shape) if not (n == 1 and (axes is None or i in axes))])


def unsqueeze(x: Tensor, axis: int | None = None, dim: int | None = None) -> Tensor:
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


def getitem(x: Tensor, index: object) -> Tensor:
    return GetItem.apply(x, index=_plain_index(index))


def concat(tensors: Sequence[Tensor], axis: int = 0, dim: int | None = None) -> Tensor:
    return Concat.apply(*tensors, axis=axis if dim is None else dim)


cat = concat


def stack(tensors: Sequence[Tensor], axis: int = 0, dim: int | None = None) -> Tensor:
    axis = dim if dim is not None else axis
    return concat([unsqueeze(t, axis) for t in tensors], axis=axis)


def pad(x: Tensor, pad_width: int | Sequence[int] | Sequence[Sequence[int]], value: float = 0.0) -> Tensor:
    """Constant padding. ``pad_width`` is numpy's: an int, (before, after), or one pair per axis."""
    width = (
        np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (x.ndim, 2))
        if np.ndim(pad_width) < 2
        else np.asarray(pad_width)
    )
    if width.shape != (x.ndim, 2) or (width < 0).any():
        raise ValueError(f"Pad: pad_width {pad_width!r} does not fit a tensor of shape {x.shape}")
    return Pad.apply(x, pad_width=tuple(map(tuple, width.tolist())), value=value)


# ---- convolution and pooling (NCHW), PyTorch's signatures
def conv2d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
) -> Tensor:
    """Cross-correlation of ``input`` (N, C_in, H, W) with ``weight`` (C_out, C_in/groups, kH, kW)."""
    geometry = dict(
        stride=pair(stride, "stride", "Conv2d"),
        padding=pair(padding, "padding", "Conv2d"),
        dilation=pair(dilation, "dilation", "Conv2d"),
        groups=int(groups),
    )
    operands = (input, weight) if bias is None else (input, weight, bias)
    return Conv2d.apply(*operands, **geometry)


def max_pool2d(
    input: Tensor,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple[int, int] = 0,
) -> Tensor:
    return MaxPool2d.apply(input, **window_options("MaxPool2d", kernel_size, stride, padding))


def avg_pool2d(
    input: Tensor,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple[int, int] = 0,
) -> Tensor:
    return AvgPool2d.apply(input, **window_options("AvgPool2d", kernel_size, stride, padding))


def adaptive_avg_pool2d(input: Tensor, output_size: int | tuple[int | None, int | None]) -> Tensor:
    """``output_size``: an int, or a pair whose None entries keep the input's size."""
    size = pair(output_size, "output_size", "AdaptiveAvgPool2d", minimum=1, none_ok=True)
    return AdaptiveAvgPool2d.apply(input, output_size=size)


__all__ = [
    name
    for name in dir()
    if not name.startswith("_")
    and name not in ("np", "builtins", "annotations", "pair", "window_options", "TYPE_CHECKING")
]
