"""Matrix products on the compiled GEMM (``_C.gemm``): forward and both backward products
read transposed operands in place, so nothing is copied to transpose."""

from __future__ import annotations

import numpy as np

from .. import _C
from ..autograd import Function
from ..dtypes import bf16_bits, is_bfloat16


def gemm(a: np.ndarray, b: np.ndarray, trans_a: bool = False, trans_b: bool = False) -> np.ndarray:
    """op(a) @ op(b) for 2-D or batched 3-D C-contiguous float arrays (batch 1 broadcasts).
    bfloat16 operands (autocast) multiply on the bfloat16 GEMM into a float32 result."""
    a3, b3 = (a if a.ndim == 3 else a[None]), (b if b.ndim == 3 else b[None])
    m = a3.shape[2] if trans_a else a3.shape[1]
    n = b3.shape[1] if trans_b else b3.shape[2]
    batch = max(a3.shape[0], b3.shape[0])
    if is_bfloat16(a.dtype) and is_bfloat16(b.dtype):
        out = np.empty((batch, m, n), dtype=np.float32)
        _C.gemm_bf16(bf16_bits(a3), bf16_bits(b3), out, trans_a, trans_b)
    else:
        out = np.empty((batch, m, n), dtype=a.dtype)
        _C.gemm(a3, b3, out, trans_a, trans_b)
    return out if (a.ndim == 3 or b.ndim == 3) else out[0]


def _same_float(x, y) -> bool:
    return x.dtype == y.dtype and (x.dtype.type in (np.float32, np.float64) or is_bfloat16(x.dtype))


def _check(x, y):
    if not _same_float(x, y):
        raise TypeError(f"MatMul: operands must both be float32, float64 or bfloat16, got {x.dtype} and {y.dtype}")
    if x.ndim < 2 or y.ndim < 2 or x.shape[-1] != y.shape[-2]:
        raise ValueError(
            f"MatMul: shapes {x.shape} and {y.shape} are not aligned "
            f"(inner dimensions {x.shape[-1:]} vs {y.shape[-2:-1]})"
        )


class MatMul(Function):
    """Z = X @ Y with numpy batching rules (operands of at least 2 dimensions).
    dX = dZ @ Y^T,  dY = X^T @ dZ  (summed over broadcast batch dimensions)."""

    reads = ("inputs",)  # not the output: it may change in place (y = a * b; y += 1)

    amp = "lower"  # autocast: bfloat16 inputs, float32 accumulation (minigrad/amp.py)

    def forward(self, x, y) -> np.ndarray:
        _check(x, y)
        self.x, self.y = x, y
        if y.ndim == 2:  # fold x's batch dimensions into its rows: one large GEMM
            return gemm(x.reshape(-1, x.shape[-1]), y).reshape(*x.shape[:-1], y.shape[-1])
        try:
            batch = np.broadcast_shapes(x.shape[:-2], y.shape[:-2])
        except ValueError:
            raise ValueError(f"MatMul: batch dimensions of {x.shape} and {y.shape} cannot be broadcast") from None
        self.batch = batch
        xb, yb = self._batched(x, batch), self._batched(y, batch)
        return gemm(xb, yb).reshape(*batch, x.shape[-2], y.shape[-1])

    @staticmethod
    def _batched(a, batch):
        if a.shape[:-2] == batch:
            return a.reshape(-1, *a.shape[-2:])
        if a.ndim == 2:
            return a[None]
        return np.ascontiguousarray(np.broadcast_to(a, batch + a.shape[-2:])).reshape(-1, *a.shape[-2:])

    def backward(self, g) -> tuple[np.ndarray | None, ...]:
        x, y = self.x, self.y
        g = np.ascontiguousarray(g)
        if y.ndim == 2:
            g2 = g.reshape(-1, y.shape[-1])
            dx = gemm(g2, y, trans_b=True).reshape(x.shape) if self.needs_input_grad[0] else None
            dy = gemm(x.reshape(-1, x.shape[-1]), g2, trans_a=True) if self.needs_input_grad[1] else None
            return dx, dy
        gb = g.reshape(-1, *g.shape[-2:])
        dx = dy = None
        if self.needs_input_grad[0]:
            dx = gemm(gb, self._batched(y, self.batch), trans_b=True).reshape(*self.batch, *x.shape[-2:])
        if self.needs_input_grad[1]:
            dy = gemm(self._batched(x, self.batch), gb, trans_a=True).reshape(*self.batch, *y.shape[-2:])
        return dx, dy


# ---- the fully connected layer (added with minigrad.nn: Linear's hot path)
class Linear(Function):
    """y = x W^T + b for x (..., in), W (out, in), b (out,) — PyTorch's weight layout.
    dx = dy W,  dW = dy^T x,  db = sum of dy over the batch.
    All three products read W and the (flattened) batch in place through the GEMM's
    transpose flags, so neither W^T nor dy^T is ever materialised."""

    reads = ("inputs",)  # not the output: it may change in place (y = a * b; y += 1)

    amp = "lower"  # autocast: bfloat16 inputs, float32 accumulation (minigrad/amp.py)

    def forward(self, x, weight, bias=None) -> np.ndarray:
        if not _same_float(x, weight):
            raise TypeError(
                f"Linear: input and weight must both be float32, float64 or bfloat16, got {x.dtype} and {weight.dtype}"
            )
        if weight.ndim != 2 or x.ndim == 0 or x.shape[-1] != weight.shape[1]:
            raise ValueError(
                f"Linear: input features {x.shape[-1:]} do not match weight {weight.shape} "
                "(expected weight (out_features, in_features))"
            )
        if bias is not None and (bias.shape != (weight.shape[0],) or bias.dtype != weight.dtype):
            raise ValueError(
                f"Linear: bias {bias.shape} {bias.dtype} does not match weight {weight.shape} {weight.dtype}"
            )
        self.x_shape, self.x, self.weight = x.shape, x.reshape(-1, x.shape[-1]), weight
        y = gemm(self.x, weight, trans_b=True)
        if bias is not None:
            y += bias
        return y.reshape(*x.shape[:-1], weight.shape[0])

    def backward(self, g) -> tuple[np.ndarray | None, ...]:
        g = np.ascontiguousarray(g).reshape(-1, self.weight.shape[0])
        dx = dw = db = None
        if self.needs_input_grad[0]:
            dx = gemm(g, self.weight).reshape(self.x_shape)
        if self.needs_input_grad[1]:
            dw = gemm(g, self.x, trans_a=True)
        if len(self.needs_input_grad) > 2 and self.needs_input_grad[2]:
            db = g.sum(axis=0, dtype=np.float32 if is_bfloat16(g.dtype) else g.dtype)
        return dx, dw, db
