"""Element-wise ops and activations, each forward next to its backward.

Binary ops follow numpy broadcasting; their backward returns full-size gradients and the
engine sums them back to each operand's shape.
"""

from __future__ import annotations

import numpy as np

from .. import _C
from ..autograd import Function
from ..dtypes import array_of, bf16_bits, convert, is_bfloat16

_COMPILED_MIN_SIZE = 4096  # below this a bound call costs more than numpy's loop saves


def _compiled(*arrays) -> bool:
    """Whether the multithreaded kernels of csrc/eltwise.cpp apply: arrays all of one shape and
    dtype, C-contiguous, and float32/float64 of at least _COMPILED_MIN_SIZE elements or bfloat16
    of any size (numpy's bfloat16 loops go one value at a time); numpy handles everything else."""
    first = arrays[0]
    return (
        first.size >= _COMPILED_MIN_SIZE and first.dtype.type in (np.float32, np.float64) or is_bfloat16(first.dtype)
    ) and all(a.shape == first.shape and a.dtype == first.dtype and a.flags.c_contiguous for a in arrays)


def add_arrays(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """x + y with numpy broadcasting; on the compiled, threaded kernel where it applies
    (:func:`_compiled`). Also how the engine sums the gradients of a tensor used twice."""
    if not _compiled(x, y):
        return x + y
    out = np.empty_like(x)
    _C.add(bf16_bits(x), bf16_bits(y), bf16_bits(out))
    return out


def add_into(x: np.ndarray, y: np.ndarray) -> None:
    """x += y, on the compiled, threaded kernel where it applies: how a leaf's ``.grad``
    accumulates (numpy's ``+=`` runs on one core; an 8 MB gradient took 0.4 ms)."""
    if _compiled(x, y):
        _C.add(bf16_bits(x), bf16_bits(y), bf16_bits(x))
    else:
        x += y


class Add(Function):
    """z = x + y.   dz/dx = 1, dz/dy = 1."""

    reads = ()  # backward reads no input or output values: in-place changes are fine
    bfloat16_kernels = True  # bfloat16 + bfloat16 adds in float32 and rounds once (minigrad/amp.py)

    def forward(self, x, y) -> np.ndarray:
        return add_arrays(x, y)

    def backward(self, g) -> tuple[np.ndarray | None, ...]:
        return g, g


class Sub(Function):
    """z = x - y.   dz/dx = 1, dz/dy = -1."""

    reads = ()  # backward reads no input or output values: in-place changes are fine

    def forward(self, x, y) -> np.ndarray:
        return x - y

    def backward(self, g) -> tuple[np.ndarray | None, ...]:
        return g, -g


class Mul(Function):
    """z = x * y.   dz/dx = y, dz/dy = x."""

    reads = ("inputs",)  # not the output: it may change in place (y = a * b; y += 1)

    def forward(self, x, y) -> np.ndarray:
        self.x, self.y = x, y
        return x * y

    def backward(self, g) -> tuple[np.ndarray | None, ...]:
        return g * self.y if self.needs_input_grad[0] else None, g * self.x if self.needs_input_grad[1] else None


class Div(Function):
    """z = x / y.   dz/dx = 1/y, dz/dy = -x/y^2."""

    reads = ("inputs",)  # not the output: it may change in place (y = a * b; y += 1)

    def forward(self, x, y) -> np.ndarray:
        self.x, self.y = x, y
        return x / y

    def backward(self, g) -> tuple[np.ndarray | None, ...]:
        gx = g / self.y
        return gx, -gx * self.x / self.y if self.needs_input_grad[1] else None


class Pow(Function):
    """z = x ** y.   dz/dx = y x^(y-1),  dz/dy = x^y ln x."""

    def forward(self, x, y) -> np.ndarray:
        self.x, self.y = x, y
        self.z = np.power(x, y)
        return self.z

    def backward(self, g) -> tuple[np.ndarray | None, ...]:
        gx = g * self.y * np.power(self.x, self.y - 1) if self.needs_input_grad[0] else None
        gy = None
        if self.needs_input_grad[1]:
            with np.errstate(divide="ignore", invalid="ignore"):
                gy = np.where(self.x > 0, g * self.z * np.log(np.where(self.x > 0, self.x, 1)), 0)
        return gx, gy


class Neg(Function):
    """z = -x."""

    reads = ()  # backward reads no input or output values: in-place changes are fine

    def forward(self, x) -> np.ndarray:
        return -x

    def backward(self, g) -> np.ndarray:
        return -g


class Abs(Function):
    """z = |x|.   dz/dx = sign(x) (0 at 0, as PyTorch)."""

    def forward(self, x) -> np.ndarray:
        self.sign = np.sign(x)
        return np.abs(x)

    def backward(self, g) -> np.ndarray:
        return g * self.sign


class Exp(Function):
    """z = e^x.   dz/dx = z."""

    def forward(self, x) -> np.ndarray:
        self.z = np.exp(x)
        return self.z

    def backward(self, g) -> np.ndarray:
        return g * self.z


class Log(Function):
    """z = ln x.   dz/dx = 1/x."""

    def forward(self, x) -> np.ndarray:
        self.x = x
        return np.log(x)

    def backward(self, g) -> np.ndarray:
        return g / self.x


class Sqrt(Function):
    """z = sqrt(x).   dz/dx = 1 / (2 z)."""

    def forward(self, x) -> np.ndarray:
        self.z = np.sqrt(x)
        return self.z

    def backward(self, g) -> np.ndarray:
        return g / (2 * self.z)


class Clip(Function):
    """z = min(max(x, low), high).   dz/dx = 1 where low <= x <= high, else 0."""

    def forward(self, x, low=None, high=None) -> np.ndarray:
        self.inside = np.ones(x.shape, bool)
        if low is not None:
            self.inside &= x >= low
        if high is not None:
            self.inside &= x <= high
        return np.clip(x, low, high)

    def backward(self, g) -> np.ndarray:
        return g * self.inside


class Maximum(Function):
    """z = max(x, y).   The gradient goes to the larger operand; ties split it half and half."""

    def forward(self, x, y) -> np.ndarray:
        self.x_share = (x > y) + 0.5 * (x == y)
        return np.maximum(x, y)

    def backward(self, g) -> tuple[np.ndarray | None, ...]:
        return g * self.x_share, g * (1 - self.x_share)


class Minimum(Function):
    """z = min(x, y).   The gradient goes to the smaller operand; ties split it half and half."""

    def forward(self, x, y) -> np.ndarray:
        self.x_share = (x < y) + 0.5 * (x == y)
        return np.minimum(x, y)

    def backward(self, g) -> tuple[np.ndarray | None, ...]:
        return g * self.x_share, g * (1 - self.x_share)


class Where(Function):
    """z = x where cond else y (cond is a constant mask)."""

    def forward(self, cond, x, y) -> np.ndarray:
        self.cond = cond.astype(bool)
        return np.where(self.cond, x, y)

    def backward(self, g) -> tuple[np.ndarray | None, ...]:
        return None, np.where(self.cond, g, 0), np.where(self.cond, 0, g)


class Cast(Function):
    """z = x converted to another float dtype; the gradient converts back."""

    reads = ()  # backward reads no input or output values: in-place changes are fine

    moves_bytes = True  # bfloat16 arrays pass as they are (minigrad/amp.py)

    def forward(self, x, dtype) -> np.ndarray:
        self.source = x.dtype
        return convert(x, dtype) if np.dtype(dtype) != x.dtype else x.copy()

    def backward(self, g) -> np.ndarray:
        return convert(g, self.source)


# ---------------------------------------------------------------------------- activations
class ReLU(Function):
    """z = max(x, 0).   dz/dx = 1 if x > 0 else 0."""

    bfloat16_kernels = True  # exact on bfloat16 (minigrad/amp.py)

    def forward(self, x) -> np.ndarray:
        if not _compiled(x):
            self.z = np.maximum(x, 0, dtype=x.dtype)
            return self.z
        self.z = np.empty_like(x)
        _C.relu_forward(bf16_bits(x), bf16_bits(self.z))
        return self.z

    def backward(self, g) -> np.ndarray:
        return relu_gradient(g, self.z)


def relu_gradient(g: np.ndarray, z: np.ndarray) -> np.ndarray:
    """g * [z > 0]: the gradient through a ReLU whose output was z (on the compiled kernel where
    it applies). Also batch norm's, where a residual joins before its fused ReLU."""
    if not _compiled(g, z):
        return g * (z > 0)
    dx = np.empty_like(g)
    _C.relu_backward(bf16_bits(g), bf16_bits(z), bf16_bits(dx))
    return dx


class LeakyReLU(Function):
    """z = x if x > 0 else a x.   dz/dx = 1 if x > 0 else a."""

    def forward(self, x, negative_slope=0.01) -> np.ndarray:
        self.slope = np.where(x > 0, 1, negative_slope).astype(x.dtype)
        return x * self.slope

    def backward(self, g) -> np.ndarray:
        return g * self.slope


class Sigmoid(Function):
    """z = 1 / (1 + e^-x), computed without overflow.   dz/dx = z (1 - z)."""

    def forward(self, x) -> np.ndarray:
        self.z = np.exp(-np.logaddexp(0, -x)).astype(x.dtype)
        return self.z

    def backward(self, g) -> np.ndarray:
        return g * self.z * (1 - self.z)


class Tanh(Function):
    """z = tanh x.   dz/dx = 1 - z^2."""

    def forward(self, x) -> np.ndarray:
        self.z = np.tanh(x)
        return self.z

    def backward(self, g) -> np.ndarray:
        return g * (1 - self.z * self.z)


# Comparisons: no gradient, boolean results.
def _compare(fn):
    def compare(x, y):
        from ..tensor import Tensor

        return Tensor(fn(array_of(x), array_of(y)))

    compare.__name__ = fn.__name__
    return compare


equal, not_equal = _compare(np.equal), _compare(np.not_equal)
less, less_equal = _compare(np.less), _compare(np.less_equal)
greater, greater_equal = _compare(np.greater), _compare(np.greater_equal)
