"""The Tensor methods that are an op of ``minigrad.ops`` with the tensor as first argument
(``x.sum(1)`` is ``ops.sum(x, 1)``), written out so editors and type checkers see their
signatures. ``Tensor`` inherits them; the ops themselves live in ``minigrad/ops/``."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..tensor import Tensor


class OpMethods:
    def abs(self) -> Tensor:
        return ops.abs(self)

    def exp(self) -> Tensor:
        return ops.exp(self)

    def log(self) -> Tensor:
        return ops.log(self)

    def sqrt(self) -> Tensor:
        return ops.sqrt(self)

    def clip(self, min=None, max=None) -> Tensor:
        return ops.clip(self, min=min, max=max)

    def maximum(self, y) -> Tensor:
        return ops.maximum(self, y)

    def minimum(self, y) -> Tensor:
        return ops.minimum(self, y)

    def relu(self) -> Tensor:
        return ops.relu(self)

    def leaky_relu(self, negative_slope=0.01) -> Tensor:
        return ops.leaky_relu(self, negative_slope=negative_slope)

    def sigmoid(self) -> Tensor:
        return ops.sigmoid(self)

    def tanh(self) -> Tensor:
        return ops.tanh(self)

    def softmax(self, axis=None, dim=None) -> Tensor:
        return ops.softmax(self, axis=axis, dim=dim)

    def log_softmax(self, axis=None, dim=None) -> Tensor:
        return ops.log_softmax(self, axis=axis, dim=dim)

    def sum(self, axis=None, keepdims=False, dim=None) -> Tensor:
        return ops.sum(self, axis=axis, keepdims=keepdims, dim=dim)

    def mean(self, axis=None, keepdims=False, dim=None) -> Tensor:
        return ops.mean(self, axis=axis, keepdims=keepdims, dim=dim)

    def max(self, dim=None, keepdim=False, *, axis=None, keepdims=False) -> Tensor | ops.ValuesIndices:
        return ops.max(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def min(self, dim=None, keepdim=False, *, axis=None, keepdims=False) -> Tensor | ops.ValuesIndices:
        return ops.min(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def var(self, axis=None, correction=1, keepdims=False, dim=None) -> Tensor:
        return ops.var(self, axis=axis, correction=correction, keepdims=keepdims, dim=dim)

    def std(self, axis=None, correction=1, keepdims=False, dim=None) -> Tensor:
        return ops.std(self, axis=axis, correction=correction, keepdims=keepdims, dim=dim)

    def logsumexp(self, axis=None, keepdims=False, dim=None) -> Tensor:
        return ops.logsumexp(self, axis=axis, keepdims=keepdims, dim=dim)

    def argmax(self, dim=None, keepdim=False, *, axis=None, keepdims=False) -> Tensor:
        return ops.argmax(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def argmin(self, dim=None, keepdim=False, *, axis=None, keepdims=False) -> Tensor:
        return ops.argmin(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def sort(self, dim=-1, descending=False, stable=False) -> ops.ValuesIndices:
        return ops.sort(self, dim=dim, descending=descending, stable=stable)

    def topk(self, k, dim=-1, largest=True, sorted=True) -> ops.ValuesIndices:
        return ops.topk(self, k, dim=dim, largest=largest, sorted=sorted)

    def gather(self, dim, index) -> Tensor:
        return ops.gather(self, dim, index)

    def chunk(self, chunks, dim=0) -> tuple:
        return ops.chunk(self, chunks, dim)

    def split(self, split_size_or_sections, dim=0) -> tuple:
        return ops.split(self, split_size_or_sections, dim)

    def masked_fill(self, mask, value) -> Tensor:
        return ops.masked_fill(self, mask, value)

    def flatten(self, start_dim=0, end_dim=-1) -> Tensor:
        return ops.flatten(self, start_dim=start_dim, end_dim=end_dim)

    def transpose(self, dim0=None, dim1=None) -> Tensor:
        return ops.transpose(self, dim0=dim0, dim1=dim1)

    def squeeze(self, axis=None, dim=None) -> Tensor:
        return ops.squeeze(self, axis=axis, dim=dim)

    def unsqueeze(self, axis=None, dim=None) -> Tensor:
        return ops.unsqueeze(self, axis=axis, dim=dim)

    def broadcast_to(self, shape) -> Tensor:
        return ops.broadcast_to(self, shape)

    def matmul(self, y) -> Tensor:
        return ops.matmul(self, y)

    def pad(self, pad_width, value=0.0) -> Tensor:
        return ops.pad(self, pad_width, value=value)


class TorchMethods:
    """What PyTorch scripts call on a tensor beyond the ops: sizes, devices, dtype shorthands,
    comparisons as methods, and the tensor protocol (``__index__``, ``__format__``)."""

    def size(self, dim=None) -> tuple | int:
        """The shape (``dim`` None) or one extent, as ``torch.Tensor.size``."""
        return tuple(self.shape) if dim is None else self.shape[dim]

    def numel(self) -> int:
        return int(self.data.size)

    nelement = numel

    def dim(self) -> int:
        return self.ndim

    def to(self, *args, **kwargs) -> Tensor:
        """``to(dtype)``, ``to(device)``, ``to(device, dtype)``, ``to(other)``, with ``dtype=`` /
        ``device=`` keywords as PyTorch; only the CPU exists. Returns the tensor itself when
        nothing changes, as PyTorch does."""
        dtype = kwargs.pop("dtype", None)
        for value in (*args, kwargs.pop("device", None)):
            if value is None:
                continue
            if isinstance(value, type(self)):
                dtype = value.dtype
            elif is_device(value):
                device(value)  # raises for anything but the CPU
            else:
                dtype = value
        kwargs.pop("non_blocking", None)
        copy = kwargs.pop("copy", False)
        if kwargs:
            raise TypeError(f"to() got unexpected keyword arguments {sorted(kwargs)}")
        dtype = None if dtype is None else as_dtype(dtype)
        if dtype is None or dtype == self.dtype:
            return self.clone() if copy else self
        return ops.cast(self, dtype=dtype)

    def cpu(self) -> Tensor:
        return self

    device = property(lambda self: device("cpu"))
    is_cuda = False

    def long(self) -> Tensor:
        return self.to(np.int64)

    def int(self) -> Tensor:
        return self.to(np.int32)

    def bool(self) -> Tensor:
        return self.to(np.bool_)

    def type_as(self, other) -> Tensor:
        return self.to(other.dtype)

    def view_as(self, other) -> Tensor:
        return self.reshape(other.shape)

    reshape_as = view_as

    def clone(self) -> Tensor:
        """A copy that stays on the tape (gradients flow back to the original)."""
        return self * 1 if self.requires_grad else type(self)(self.data.copy())

    def t(self) -> Tensor:
        if self.ndim > 2:
            raise RuntimeError(f"t() expects a tensor with at most 2 dimensions, got {self.ndim}")
        return self.transpose() if self.ndim == 2 else self

    def detach_(self) -> Tensor:
        self._node, self.requires_grad = None, False
        return self

    def _inplace_arith(self, op, other) -> Tensor:
        """``x += other`` (``add_``, ``sub_``, ``mul_``): the array changes in place. A tensor
        that requires grad is refused where PyTorch refuses: a leaf (with grad enabled) and, here
        also, a view. On a non-leaf the op is recorded on the tape as well, and the tensor's
        version moves on, so an op that saved the old values for its backward (y = x.exp()
        saves y) refuses to run backward, while one that needs none (y = x * 2) is unaffected."""
        other_data = array_of(other)
        if self._node is None or not self.requires_grad or not autograd.is_grad_enabled():
            name = {ops.add: "__iadd__", ops.sub: "__isub__", ops.mul: "__imul__"}[op]
            return self._inplace(lambda d: getattr(d, name)(np.asarray(other_data)))
        if self._node.is_view:
            raise RuntimeError(
                "in-place change of a view that requires grad: its base's gradient would not see it; "
                "write `y = y + ...` instead"
            )
        before = type(self)(self.data.copy() if op is ops.mul else self.data)  # Mul reads its input
        before._node, before.requires_grad = self._node, True
        result = op(before, other)
        np.copyto(self.data, result.data, casting="same_kind")
        self.mark_modified()
        self._node = result._node
        return self

    def retain_grad(self) -> None:
        """Keeps this non-leaf tensor's gradient in ``.grad`` after backward (leaves keep theirs
        anyway), summed over backward calls like a leaf's."""
        if self._node is None or getattr(self, "_retains_grad", False):
            return

        def keep(grad):  # hooks get the gradient as a Tensor
            self.grad = type(self)(grad.data.copy()) if self.grad is None else type(self)(self.grad.data + grad.data)

        self._retains_grad = True
        self.register_hook(keep)

    @property
    def grad_fn(self) -> GradFn | None:
        """The tape's node that made this tensor (None for a leaf), as PyTorch's ``grad_fn``:
        ``.name()`` and ``.next_functions`` walk the recorded graph back to the leaves."""
        return GradFn(self._node) if self._node is not None else None

    def eq(self, other) -> Tensor:
        return ops.equal(self, other)

    def ne(self, other) -> Tensor:
        return ops.not_equal(self, other)

    def lt(self, other) -> Tensor:
        return ops.less(self, other)

    def le(self, other) -> Tensor:
        return ops.less_equal(self, other)

    def gt(self, other) -> Tensor:
        return ops.greater(self, other)

    def ge(self, other) -> Tensor:
        return ops.greater_equal(self, other)

    def scatter_(self, dim, index, src) -> Tensor:
        """Writes ``src`` (a tensor or a number) at ``index`` along ``dim``, in place (not on the
        tape: a tensor that requires grad is refused, as any in-place change is)."""
        index = np.asarray(array_of(index))
        values = np.asarray(array_of(src), dtype=self.dtype)
        if values.ndim:
            values = values[tuple(slice(0, n) for n in index.shape)]
        return self._inplace(lambda d: np.put_along_axis(d, index, values, axis=dim))

    def __index__(self) -> int:
        if self.data.size != 1 or self.dtype.kind not in "iub":
            raise TypeError(
                f"only integer tensors of a single element can be used as an index, got {self.dtype} {self.shape}"
            )
        return int(self.data.reshape(()))

    def __format__(self, spec: str) -> str:
        if self.data.size == 1 and spec:
            return format(self.data.reshape(()).item(), spec)
        return format(str(self), spec)


class GradFn:
    """A read-only view of one tape node, named as PyTorch names them (``MulBackward``)."""

    def __init__(self, node):
        self._node = node

    def name(self) -> str:
        return f"{type(self._node).__name__}Backward"

    @property
    def next_functions(self) -> tuple:
        """``((fn, 0), ...)`` per input: its node, ``AccumulateGrad`` for a leaf that requires
        grad, None for a constant."""
        found = []
        for t in getattr(self._node, "inputs", None) or ():  # empty once backward freed the graph
            fn = GradFn(t._node) if t._node is not None else AccumulateGrad(t) if t.requires_grad else None
            found.append((fn, 0))
        return tuple(found)

    def __repr__(self) -> str:
        return f"<{self.name()}>"


class AccumulateGrad:
    """The end of a ``next_functions`` walk: a leaf whose ``.grad`` receives the gradient."""

    def __init__(self, variable):
        self.variable = variable
        self.next_functions = ()

    def name(self) -> str:
        return "AccumulateGrad"

    def __repr__(self) -> str:
        return "<AccumulateGrad>"


import numpy as np  # noqa: E402

from .. import autograd, ops  # noqa: E402
from ..device import device, is_device  # noqa: E402  (the package is imported by now; its modules import Tensor lazily)
from ..dtypes import array_of, as_dtype  # noqa: E402
