"""Reductions over axes (``axis`` an int, a tuple or None for all; ``keepdims`` as numpy),
and the softmax family, whose backward needs the whole reduced row."""

from __future__ import annotations

import numpy as np

from ..autograd import Function


def _normalize_axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    for a in axes:
        if not -ndim <= a < max(ndim, 1):
            raise ValueError(f"axis {a} is out of range for a tensor with {ndim} dimensions")
    return tuple(sorted(a % max(ndim, 1) for a in axes))


def _expand(g, shape, axes, keepdims):
    """Reshapes a reduced gradient so it broadcasts against the input again."""
    if not keepdims:
        g = np.expand_dims(g, axes)
    return np.broadcast_to(g, shape)


class Sum(Function):
    """z = sum_i x_i over the axes.   dz/dx_i = 1."""

    reads = ()  # backward reads no input or output values: in-place changes are fine

    amp = "float32"  # autocast: computed in float32 (minigrad/amp.py)

    def forward(self, x, axis=None, keepdims=False) -> np.ndarray:
        self.shape, self.axes, self.keepdims = x.shape, _normalize_axes(axis, x.ndim), keepdims
        return np.sum(x, axis=self.axes, keepdims=keepdims)

    def backward(self, g) -> np.ndarray:
        return _expand(g, self.shape, self.axes, self.keepdims)


class Mean(Function):
    """z = (1/n) sum_i x_i over the axes.   dz/dx_i = 1/n."""

    reads = ()  # backward reads no input or output values: in-place changes are fine

    amp = "float32"  # autocast: computed in float32 (minigrad/amp.py)

    def forward(self, x, axis=None, keepdims=False) -> np.ndarray:
        self.shape, self.axes, self.keepdims = x.shape, _normalize_axes(axis, x.ndim), keepdims
        self.count = int(np.prod([x.shape[a] for a in self.axes])) if x.ndim else 1
        return np.mean(x, axis=self.axes, keepdims=keepdims)

    def backward(self, g) -> np.ndarray:
        return _expand(g / self.count, self.shape, self.axes, self.keepdims)


class Max(Function):
    """z = max_i x_i over the axes.   The gradient goes to the arg-maximum; tied maxima share
    it equally (as ``torch.amax``)."""

    reduce = staticmethod(np.max)

    def forward(self, x, axis=None, keepdims=False) -> np.ndarray:
        self.shape, self.axes, self.keepdims = x.shape, _normalize_axes(axis, x.ndim), keepdims
        z = self.reduce(x, axis=self.axes, keepdims=True)
        hits = x == z
        self.share = hits / hits.sum(axis=self.axes, keepdims=True)
        return z if keepdims else np.squeeze(z, axis=self.axes)

    def backward(self, g) -> np.ndarray:
        return _expand(g, self.shape, self.axes, self.keepdims) * self.share


class Min(Max):
    """z = min_i x_i over the axes.   The gradient goes to the arg-minimum (ties share it)."""

    reduce = staticmethod(np.min)


class Var(Function):
    """z = sum_i (x_i - mean)^2 / (n - correction).   dz/dx_i = 2 (x_i - mean) / (n - correction)."""

    amp = "float32"  # autocast: computed in float32 (minigrad/amp.py)

    def forward(self, x, axis=None, correction=1, keepdims=False) -> np.ndarray:
        self.shape, self.axes, self.keepdims = x.shape, _normalize_axes(axis, x.ndim), keepdims
        n = int(np.prod([x.shape[a] for a in self.axes])) if x.ndim else 1
        self.divisor = max(n - correction, 0)
        self.centered = x - x.mean(axis=self.axes, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            return (np.sum(self.centered**2, axis=self.axes, keepdims=keepdims) / self.divisor).astype(x.dtype)

    def backward(self, g) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return _expand(g, self.shape, self.axes, self.keepdims) * (2 / self.divisor) * self.centered


class Std(Var):
    """z = sqrt(var(x)).   dz/dx_i = (x_i - mean) / ((n - correction) z), and 0 where z = 0 (as
    PyTorch: a group of identical values has no direction to prefer, instead of 0 * inf = nan)."""

    def forward(self, x, axis=None, correction=1, keepdims=False) -> np.ndarray:
        self.z = np.sqrt(super().forward(x, axis, correction, keepdims))
        return self.z

    def backward(self, g) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return super().backward(np.where(self.z == 0, 0, g / (2 * self.z)))


class LogSumExp(Function):
    """z = log sum_i e^{x_i}, shifted by the maximum so large inputs cannot overflow.
    dz/dx_i = softmax(x)_i."""

    amp = "float32"  # autocast: computed in float32 (minigrad/amp.py)

    def forward(self, x, axis=None, keepdims=False) -> np.ndarray:
        self.shape, self.axes, self.keepdims = x.shape, _normalize_axes(axis, x.ndim), keepdims
        shift = np.max(x, axis=self.axes, keepdims=True)
        shift = np.where(np.isfinite(shift), shift, 0)
        z = np.log(np.sum(np.exp(x - shift), axis=self.axes, keepdims=True)) + shift
        self.softmax = np.exp(x - z)
        return z if keepdims else np.squeeze(z, axis=self.axes)

    def backward(self, g) -> np.ndarray:
        return _expand(g, self.shape, self.axes, self.keepdims) * self.softmax


class Softmax(Function):
    """z_i = e^{x_i - max} / sum_j e^{x_j - max}.   dx = z * (g - sum_j g_j z_j)."""

    amp = "float32"  # autocast: computed in float32 (minigrad/amp.py)

    def forward(self, x, axis=-1) -> np.ndarray:
        e = np.exp(x - x.max(axis=axis, keepdims=True))
        self.z, self.axis = e / e.sum(axis=axis, keepdims=True), axis
        return self.z

    def backward(self, g) -> np.ndarray:
        return self.z * (g - (g * self.z).sum(axis=self.axis, keepdims=True))


class LogSoftmax(Function):
    """z_i = x_i - logsumexp(x).   dx = g - softmax(x) * sum_j g_j."""

    amp = "float32"  # autocast: computed in float32 (minigrad/amp.py)

    def forward(self, x, axis=-1) -> np.ndarray:
        shifted = x - x.max(axis=axis, keepdims=True)
        z = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
        self.z, self.axis = z, axis
        return z

    def backward(self, g) -> np.ndarray:
        return g - np.exp(self.z) * g.sum(axis=self.axis, keepdims=True)
