"""Differentiable ops as plain functions. Each calls exactly one ``Function`` (defined, with
its backward, in the sibling modules) or composes a few of them."""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING, NamedTuple, Optional, Union

import numpy as np

from ..autograd import Function
from ..dtypes import array_of, as_dtype
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
from .norm import (
    BatchNorm,
    Normalize,
    SyncBatchNorm,
    batch_norm,
    group_norm,
    instance_norm,
    layer_norm,
)
from .pool import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d, window_options
from .reduce import LogSoftmax, LogSumExp, Max, Mean, Min, Softmax, Std, Sum, Var
from .shape import Concat, Expand, Gather, GetItem, Pad, Permute, Reshape

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
    return Cast.apply(x, dtype=as_dtype(dtype))


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


class ValuesIndices(NamedTuple):
    """What ``max``/``min``/``sort``/``topk``/``mode`` with a dim return, as in PyTorch:
    ``values, indices = minigrad.max(x, 1)``."""

    values: Tensor
    indices: Tensor


def _reduce_or_pair(op, pick, x, dim, keepdim, axis, keepdims) -> Tensor | ValuesIndices:
    if dim is not None and not isinstance(dim, (int, np.integer)):  # max(x, other): elementwise
        return (maximum if op is Max else minimum)(x, dim)
    if dim is None:  # numpy style (axis=, keepdims=) or the whole tensor: the values only
        return op.apply(x, axis=axis, keepdims=keepdims)
    keep = bool(keepdim or keepdims)
    values = op.apply(x, axis=int(dim), keepdims=keep)
    return ValuesIndices(values, pick(x, int(dim), keep))


def max(
    x: Tensor, dim=None, keepdim: bool = False, *, axis: Axes = None, keepdims: bool = False
) -> Tensor | ValuesIndices:
    """The maximum. As PyTorch: ``max(x)`` a tensor; ``max(x, dim, keepdim=False)`` the named
    tuple ``(values, indices)``; ``max(x, other)`` the element-wise maximum. numpy style,
    ``max(x, axis=..., keepdims=...)`` gives the values only. The gradient goes to the
    maximum; tied maxima share it (``axis=``) or, with ``dim``, as PyTorch does too."""
    return _reduce_or_pair(Max, argmax, x, dim, keepdim, axis, keepdims)


def min(
    x: Tensor, dim=None, keepdim: bool = False, *, axis: Axes = None, keepdims: bool = False
) -> Tensor | ValuesIndices:
    """The minimum; the same forms as :func:`max`."""
    return _reduce_or_pair(Min, argmin, x, dim, keepdim, axis, keepdims)


def gather(x: Tensor, dim: int, index: Tensor | ArrayLike) -> Tensor:
    """``out[..., i, ...] = x[..., index[..., i, ...], ...]`` along ``dim`` (PyTorch's gather)."""
    return Gather.apply(x, index=np.asarray(array_of(index)), axis=dim)


def sort(x: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> ValuesIndices:
    """``(values, indices)`` sorted along ``dim``; ties keep their order (a stable sort)."""
    data = x.data if not descending else -x.data
    order = np.argsort(data, axis=dim, kind="stable")
    return ValuesIndices(gather(x, dim, order), _tensor(order.astype(np.int64)))


def topk(x: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> ValuesIndices:
    """The ``k`` largest (or smallest) values along ``dim`` and their indices, largest first."""
    if not 0 <= k <= x.shape[dim]:
        raise RuntimeError(f"topk: k ({k}) out of range for dimension {dim} of size {x.shape[dim]}")
    order = np.argsort(-x.data if largest else x.data, axis=dim, kind="stable")
    order = np.take(order, np.arange(k), axis=dim)
    return ValuesIndices(gather(x, dim, order), _tensor(order.astype(np.int64)))


def _tensor(array) -> Tensor:
    from ..tensor import Tensor

    return Tensor(array)


def logsumexp(x: Tensor, axis: Axes = None, keepdims: bool = False, dim: Axes = None) -> Tensor:
    return LogSumExp.apply(x, axis=_axis(axis, dim), keepdims=keepdims)


def var(x: Tensor, axis: Axes = None, correction: int = 1, keepdims: bool = False, dim: Axes = None) -> Tensor:
    """Variance with Bessel's ``correction`` (1: unbiased, 0: population)."""
    return Var.apply(x, axis=_axis(axis, dim), correction=correction, keepdims=keepdims)


def std(x: Tensor, axis: Axes = None, correction: int = 1, keepdims: bool = False, dim: Axes = None) -> Tensor:
    """Standard deviation, sqrt of ``var``; its gradient is 0 where it is 0 (as PyTorch)."""
    return Std.apply(x, axis=_axis(axis, dim), correction=correction, keepdims=keepdims)


def argmax(
    x: Tensor, dim: int | None = None, keepdim: bool = False, *, axis: int | None = None, keepdims: bool = False
) -> Tensor:
    """Index of the maximum (no gradient); the first of tied maxima. ``keepdim`` (PyTorch's
    name) and ``keepdims`` (numpy's) mean the same."""
    data = array_of(x)
    return _tensor(np.argmax(data, axis=_axis(axis, dim), keepdims=bool(keepdims or keepdim)).astype(np.int64))


def argmin(
    x: Tensor, dim: int | None = None, keepdim: bool = False, *, axis: int | None = None, keepdims: bool = False
) -> Tensor:
    """Index of the minimum (no gradient); the first of tied minima."""
    data = array_of(x)
    return _tensor(np.argmin(data, axis=_axis(axis, dim), keepdims=bool(keepdims or keepdim)).astype(np.int64))


def chunk(x: Tensor, chunks: int, dim: int = 0) -> tuple:
    """``chunks`` pieces along ``dim`` of ceil(size / chunks) each (the last may be smaller; fewer
    pieces when they run out, as PyTorch)."""
    if not isinstance(chunks, (int, np.integer)) or chunks < 1:
        raise ValueError(f"chunk: chunks must be a positive integer, got {chunks!r}")
    step = -(-x.shape[dim] // chunks)
    return split(x, builtins.max(step, 1), dim)


def split(x: Tensor, split_size_or_sections, dim: int = 0) -> tuple:
    """Pieces along ``dim``: of ``split_size_or_sections`` each (the last may be smaller), or of
    the listed sizes."""
    n = x.shape[dim]
    if isinstance(split_size_or_sections, (int, np.integer)):
        if split_size_or_sections < 1:
            raise ValueError(f"split: split_size must be a positive integer, got {split_size_or_sections}")
        sizes = [builtins.min(split_size_or_sections, n - i) for i in range(0, n, split_size_or_sections)]
    else:
        sizes = [int(size) for size in split_size_or_sections]
        if builtins.sum(sizes) != n or builtins.min(sizes, default=0) < 0:
            raise RuntimeError(
                f"split: sizes {sizes} must be non-negative and add up to {n} (dimension {dim} of {x.shape})"
            )
    pieces, start = [], 0
    for size in sizes:
        index = [slice(None)] * x.ndim
        index[dim] = slice(start, start + size)
        pieces.append(x[tuple(index)])
        start += size
    return tuple(pieces)


def masked_fill(x: Tensor, mask: Tensor | ArrayLike, value: float) -> Tensor:
    """x with ``value`` where ``mask`` is true (broadcast); the gradient flows where it is not."""
    return where(mask, _tensor(np.asarray(value, dtype=x.dtype)), x)


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
