"""Tensor constructors: from data, filled, random (from the global generator), ranges."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from .dtypes import array_of, as_dtype
from .random import generator
from .tensor import Tensor, _as_array, _shape_args


def tensor(data: ArrayLike | Tensor, requires_grad: bool = False, dtype: DTypeLike | None = None) -> Tensor:
    return Tensor(
        np.array(array_of(data), dtype=as_dtype(dtype), copy=True) if dtype else _as_array(data).copy(),
        requires_grad=requires_grad,
    )


def from_numpy(array: np.ndarray) -> Tensor:
    """Shares memory with ``array`` when it is C-contiguous (no copy)."""
    return Tensor(array)


def _filled(fill, shape, dtype, requires_grad):
    return Tensor(fill(_shape_args(shape), dtype=as_dtype(dtype or np.float32)), requires_grad=requires_grad)


def zeros(*shape: int | Sequence[int], dtype: DTypeLike | None = None, requires_grad: bool = False) -> Tensor:
    return _filled(np.zeros, shape, dtype, requires_grad)


def ones(*shape: int | Sequence[int], dtype: DTypeLike | None = None, requires_grad: bool = False) -> Tensor:
    return _filled(np.ones, shape, dtype, requires_grad)


def zeros_like(t: Tensor, dtype: DTypeLike | None = None, requires_grad: bool = False) -> Tensor:
    return zeros(t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad)


def ones_like(t: Tensor, dtype: DTypeLike | None = None, requires_grad: bool = False) -> Tensor:
    return ones(t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad)


def full(
    shape: int | Sequence[int], value: float, dtype: DTypeLike | None = None, requires_grad: bool = False
) -> Tensor:
    return Tensor(
        np.full(_shape_args((shape,)), value, dtype=as_dtype(dtype or np.float32)), requires_grad=requires_grad
    )


def randn(*shape: int | Sequence[int], dtype: DTypeLike | None = None, requires_grad: bool = False) -> Tensor:
    """Standard normal samples from the global generator (see ``manual_seed``)."""
    return Tensor(
        generator().standard_normal(_shape_args(shape), dtype=as_dtype(dtype or np.float32)),
        requires_grad=requires_grad,
    )


def rand(*shape: int | Sequence[int], dtype: DTypeLike | None = None, requires_grad: bool = False) -> Tensor:
    """Uniform [0, 1) samples from the global generator."""
    return Tensor(
        generator().random(_shape_args(shape), dtype=as_dtype(dtype or np.float32)), requires_grad=requires_grad
    )


def arange(start: float, stop: float | None = None, step: float = 1, dtype: DTypeLike | None = None) -> Tensor:
    values = np.arange(start, stop, step) if stop is not None else np.arange(start)
    return Tensor(values, dtype=dtype or (np.int64 if values.dtype.kind in "iu" else np.float32))


def eye(n: int, m: int | None = None, dtype: DTypeLike | None = None, requires_grad: bool = False) -> Tensor:
    return Tensor(np.eye(n, m, dtype=as_dtype(dtype or np.float32)), requires_grad=requires_grad)
