"""Tensor constructors: from data, filled, random (from the global generator), ranges."""
from __future__ import annotations

import numpy as np

from .random import generator
from .tensor import Tensor, _as_array, _shape_args


def tensor(data, requires_grad: bool = False, dtype=None) -> Tensor:
    return Tensor(np.array(getattr(data, "data", data), dtype=dtype, copy=True) if dtype else
                  _as_array(data).copy(), requires_grad=requires_grad)


def from_numpy(array: np.ndarray) -> Tensor:
    """Shares memory with ``array`` when it is C-contiguous (no copy)."""
    return Tensor(array)


def _filled(fill, shape, dtype, requires_grad):
    return Tensor(fill(_shape_args(shape), dtype=np.dtype(dtype or np.float32)), requires_grad=requires_grad)


def zeros(*shape, dtype=None, requires_grad=False) -> Tensor: return _filled(np.zeros, shape, dtype, requires_grad)
def ones(*shape, dtype=None, requires_grad=False) -> Tensor: return _filled(np.ones, shape, dtype, requires_grad)
def zeros_like(t, dtype=None, requires_grad=False) -> Tensor: return zeros(t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad)
def ones_like(t, dtype=None, requires_grad=False) -> Tensor: return ones(t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad)


def full(shape, value, dtype=None, requires_grad=False) -> Tensor:
    return Tensor(np.full(_shape_args((shape,)), value, dtype=np.dtype(dtype or np.float32)), requires_grad=requires_grad)


def randn(*shape, dtype=None, requires_grad=False) -> Tensor:
    """Standard normal samples from the global generator (see ``manual_seed``)."""
    return Tensor(generator().standard_normal(_shape_args(shape), dtype=np.dtype(dtype or np.float32)), requires_grad=requires_grad)


def rand(*shape, dtype=None, requires_grad=False) -> Tensor:
    """Uniform [0, 1) samples from the global generator."""
    return Tensor(generator().random(_shape_args(shape), dtype=np.dtype(dtype or np.float32)), requires_grad=requires_grad)


def arange(start, stop=None, step=1, dtype=None) -> Tensor:
    values = np.arange(start, stop, step) if stop is not None else np.arange(start)
    return Tensor(values, dtype=dtype or (np.int64 if values.dtype.kind in "iu" else np.float32))


def eye(n, m=None, dtype=None, requires_grad=False) -> Tensor:
    return Tensor(np.eye(n, m, dtype=np.dtype(dtype or np.float32)), requires_grad=requires_grad)
