"""``Tensor``: a C-contiguous numpy array plus what the tape needs to differentiate it.

A Tensor made by the user is a *leaf*; one made by an op remembers that op's node
(``_node``), which remembers its inputs. ``backward()`` hands the walk to
:mod:`minigrad.autograd`. Every operator and method below forwards to a differentiable op
in :mod:`minigrad.ops`; none computes anything itself.
"""

from __future__ import annotations

import builtins  # Tensor defines float(), which shadows the builtin in its annotations

import numpy as np

from . import autograd
from .dtypes import SUPPORTED_NAMES, as_dtype, is_float, is_supported, require_bfloat16
from .ops.methods import OpMethods, TorchMethods


def _as_array(data, dtype=None) -> np.ndarray:
    if isinstance(data, Tensor):
        data = data.data
    if dtype is None and not isinstance(data, (np.ndarray, np.generic)):  # numpy scalars keep their dtype
        probe = np.asarray(data)
        dtype = np.float32 if probe.dtype.kind == "f" else probe.dtype  # Python floats -> float32
    array = np.asarray(data, dtype=None if dtype is None else as_dtype(dtype))
    if not is_supported(array.dtype):
        raise TypeError(f"unsupported dtype {array.dtype}; minigrad supports {SUPPORTED_NAMES}")
    return array if array.flags.c_contiguous else array.copy(order="C")


class Tensor(OpMethods, TorchMethods):  # x.exp(), x.sum(dim), x.size(), ... (minigrad/ops/methods.py)
    __array_priority__ = 1000  # numpy defers to our operators: ndarray * Tensor -> Tensor

    def __init__(self, data, requires_grad: bool = False, dtype=None, _version=None):
        self.data = _as_array(data, dtype)
        self.grad: Tensor | None = None
        self._node = None  # the Function that produced this tensor (None for leaves)
        self._version = _version if _version is not None else [0]  # shared by views
        self._hooks = []
        self.requires_grad = False
        self.requires_grad_(requires_grad)

    @staticmethod
    def _constant_like(value, inputs) -> Tensor:
        """Wraps a Python number or array operand in the dtype of the op's float tensors."""
        ref = next((t.data.dtype for t in inputs if isinstance(t, Tensor) and is_float(t.data.dtype)), None)
        if ref is None:  # as tensor(): Python floats become float32
            return Tensor(value)
        return Tensor(value, dtype=ref if np.asarray(value).dtype.kind in "fiub" else None)

    # ---- what a tensor is
    shape = property(lambda self: self.data.shape)
    ndim = property(lambda self: self.data.ndim)
    dtype = property(lambda self: self.data.dtype)
    is_leaf = property(lambda self: self._node is None)
    T = property(lambda self: self.transpose())

    def __array__(self, dtype=None, copy=None):
        return self.data if dtype is None else self.data.astype(dtype)

    def __repr__(self):
        grad = ", requires_grad=True" if self.requires_grad else ""
        return f"tensor({np.array2string(self.data, separator=', ', prefix='tensor(')}{grad})"

    # ---- the tape
    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if requires_grad and not is_float(self.data.dtype):
            raise TypeError(f"only float32/float64/bfloat16 tensors can require grad, not {self.dtype}")
        self.requires_grad = bool(requires_grad)
        return self

    def backward(self, grad=None, retain_graph: bool = False) -> None:
        autograd.backward(self, grad, retain_graph)

    def detach(self) -> Tensor:
        return Tensor(self.data, _version=self._version)

    def register_hook(self, hook) -> None:
        """``hook(grad) -> new grad or None`` runs when this tensor's gradient is computed."""
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that does not require grad")
        (self._hooks if self._node is None else self._node.hooks).append(hook)

    def _accumulate(self, grad: np.ndarray) -> None:
        for hook in self._hooks:
            grad = autograd._run_hook(hook, grad)
        if self.grad is None:
            self.grad = Tensor(grad.copy())
        else:
            ops.elementwise.add_into(self.grad.data, grad)

    # ---- in-place updates: bump the version so the tape can refuse stale saved values
    def mark_modified(self) -> Tensor:
        """Records that ``data`` was changed in place (by numpy, a kernel, an optimiser); every writer calls it."""
        self._version[0] += 1
        return self

    def _inplace(self, update) -> Tensor:
        if self.requires_grad and autograd.is_grad_enabled():
            raise RuntimeError("in-place change of a tensor that requires grad: wrap it in no_grad()")
        update(self.data)
        return self.mark_modified()

    def __setitem__(self, index, value):
        self._inplace(lambda d: d.__setitem__(_index(index), _as_array(value, d.dtype)))

    # One-line forwards read as a table; the formatter leaves them so.
    # fmt: off
    def numpy(self) -> np.ndarray: return self.data
    def item(self) -> bool | int | builtins.float: return self.data.item()
    def tolist(self) -> list | bool | int | builtins.float: return self.data.tolist()
    def __len__(self): return len(self.data)
    def __bool__(self): return bool(self.data)  # numpy refuses arrays of several elements
    def __float__(self): return float(self.data)
    def __int__(self): return int(self.data)
    def zero_(self) -> Tensor: return self._inplace(lambda d: d.fill(0))
    def fill_(self, v) -> Tensor: return self._inplace(lambda d: d.fill(v))
    def copy_(self, src) -> Tensor: return self._inplace(lambda d: np.copyto(d, np.asarray(src, d.dtype)))
    def add_(self, other, alpha=1) -> Tensor: return self._inplace_arith(ops.add, other * alpha if alpha != 1 else other)
    def sub_(self, other) -> Tensor: return self._inplace_arith(ops.sub, other)
    def mul_(self, other) -> Tensor: return self._inplace_arith(ops.mul, other)
    __iadd__, __isub__, __imul__ = add_, sub_, mul_

    # ---- operators (each forwards to one op in minigrad.ops)
    def __add__(self, other): return ops.add(self, other)
    def __radd__(self, other): return ops.add(other, self)
    def __sub__(self, other): return ops.sub(self, other)
    def __rsub__(self, other): return ops.sub(other, self)
    def __mul__(self, other): return ops.mul(self, other)
    def __rmul__(self, other): return ops.mul(other, self)
    def __truediv__(self, other): return ops.div(self, other)
    def __rtruediv__(self, other): return ops.div(other, self)
    def __pow__(self, other): return ops.pow(self, other)
    def __rpow__(self, other): return ops.pow(other, self)
    def __matmul__(self, other): return ops.matmul(self, other)
    def __rmatmul__(self, other): return ops.matmul(other, self)
    def __neg__(self): return ops.neg(self)
    def __abs__(self): return ops.abs(self)
    def __getitem__(self, index): return ops.getitem(self, index)
    def __eq__(self, other): return ops.equal(self, other)
    def __ne__(self, other): return ops.not_equal(self, other)
    def __lt__(self, other): return ops.less(self, other)
    def __le__(self, other): return ops.less_equal(self, other)
    def __gt__(self, other): return ops.greater(self, other)
    def __ge__(self, other): return ops.greater_equal(self, other)
    __hash__ = object.__hash__
    def reshape(self, *shape) -> Tensor: return ops.reshape(self, _shape_args(shape))
    view = reshape
    def expand(self, *shape) -> Tensor: return ops.expand(self, _shape_args(shape))
    def permute(self, *axes) -> Tensor: return ops.permute(self, _shape_args(axes))
    def float(self) -> Tensor: return self.to(np.float32)
    def double(self) -> Tensor: return self.to(np.float64)
    def bfloat16(self) -> Tensor: return self.to(require_bfloat16("Tensor.bfloat16()"))
    # fmt: on


def _shape_args(args) -> tuple:
    return tuple(args[0]) if len(args) == 1 and isinstance(args[0], (tuple, list)) else tuple(args)


def _index(index):
    """Turns Tensors inside an index expression into numpy arrays."""
    if isinstance(index, tuple):
        return tuple(_index(i) for i in index)
    return index.data if isinstance(index, Tensor) else index


from . import ops  # noqa: E402  (ops build on Tensor; the methods above call into them)
