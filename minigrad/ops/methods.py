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

    def max(self, axis=None, keepdims=False, dim=None) -> Tensor:
        return ops.max(self, axis=axis, keepdims=keepdims, dim=dim)

    def min(self, axis=None, keepdims=False, dim=None) -> Tensor:
        return ops.min(self, axis=axis, keepdims=keepdims, dim=dim)

    def var(self, axis=None, correction=1, keepdims=False, dim=None) -> Tensor:
        return ops.var(self, axis=axis, correction=correction, keepdims=keepdims, dim=dim)

    def std(self, axis=None, correction=1, keepdims=False, dim=None) -> Tensor:
        return ops.std(self, axis=axis, correction=correction, keepdims=keepdims, dim=dim)

    def logsumexp(self, axis=None, keepdims=False, dim=None) -> Tensor:
        return ops.logsumexp(self, axis=axis, keepdims=keepdims, dim=dim)

    def argmax(self, axis=None, keepdims=False, dim=None) -> Tensor:
        return ops.argmax(self, axis=axis, keepdims=keepdims, dim=dim)

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


from .. import ops  # noqa: E402  (the package is imported by now; its modules import Tensor lazily)
