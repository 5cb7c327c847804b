"""Losses that are single fused ops (softmax-cross-entropy, NLL, BCE-with-logits): fusing
keeps them numerically stable for large logits and avoids materialising the softmax twice."""

from __future__ import annotations

import numpy as np

from ..autograd import Function
from ..dtypes import is_float


def _reduce(loss, reduction):
    if reduction == "mean":
        return np.asarray(loss.mean(), dtype=loss.dtype)
    if reduction == "sum":
        return np.asarray(loss.sum(), dtype=loss.dtype)
    if reduction == "none":
        return loss
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _reduce_grad(g, reduction, n):
    return (
        np.broadcast_to(g / n, (n,)) if reduction == "mean" else np.broadcast_to(g, (n,)) if reduction == "sum" else g
    )


def smoothed_targets(target, classes, dtype, label_smoothing=0.0, smoothing_style="uniform") -> np.ndarray:
    """Target distribution q for cross-entropy. Integer classes become one-hot rows.
    ``uniform`` (PyTorch): q = (1 - eps) onehot + eps / K on every class.
    ``others`` (the lecture's form): 1 - eps on the true class, eps / (K - 1) on each other."""
    if target.dtype.kind in "iu":
        if target.ndim != 1 or (target.size and (target.min() < 0 or target.max() >= classes)):
            raise ValueError(
                f"cross_entropy: class targets must be a 1-D array of indices in [0, {classes}), "
                f"got shape {target.shape} with range [{target.min() if target.size else '-'}, "
                f"{target.max() if target.size else '-'}]"
            )
        q = np.zeros((target.shape[0], classes), dtype)
        q[np.arange(target.shape[0]), target] = 1
    else:
        q = target.astype(dtype, copy=False)
    if label_smoothing:
        if smoothing_style == "uniform":
            q = q * (1 - label_smoothing) + label_smoothing / classes
        elif smoothing_style == "others":
            q = q * (1 - label_smoothing) + (1 - q) * label_smoothing / (classes - 1)
        else:
            raise ValueError(f"smoothing_style must be 'uniform' or 'others', got {smoothing_style!r}")
    return q


def _check_target(logits, target) -> None:
    """PyTorch's two target forms: integer class indices of shape (N,), or float class
    probabilities of the logits' shape (N, C). Anything else (booleans, float indices, a column
    of indices) would broadcast into a wrong loss, so it is refused."""
    n, classes = logits.shape
    got = f"got target of shape {target.shape} and dtype {target.dtype} for logits of shape {logits.shape}"
    if target.dtype.kind in "iu":
        if target.shape != (n,):
            raise ValueError(f"cross_entropy: class-index targets must have shape ({n},): {got}")
    elif is_float(target.dtype):
        if target.shape != logits.shape:
            hint = " (class indices must be an integer dtype: target.astype('int64'))" if target.shape == (n,) else ""
            raise ValueError(
                f"cross_entropy: float targets are class probabilities of shape ({n}, {classes}): {got}{hint}"
            )
    else:
        raise ValueError(
            f"cross_entropy: targets must be integer class indices of shape ({n},) or float class "
            f"probabilities of shape ({n}, {classes}): {got}"
        )


class CrossEntropy(Function):
    """loss_n = -sum_c q_nc log softmax(x_n)_c for logits x (N, C) and targets q (class indices
    or probabilities, optionally label-smoothed).   dx_n = softmax(x_n) sum_c q_nc - q_n."""

    amp = "float32"  # autocast: computed in float32 (minigrad/amp.py)

    def forward(self, logits, target, reduction="mean", label_smoothing=0.0, smoothing_style="uniform") -> np.ndarray:
        if logits.ndim != 2:
            raise ValueError(f"cross_entropy: logits must be (N, C), got shape {logits.shape}")
        _check_target(logits, target)
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        self.q = smoothed_targets(target, logits.shape[1], logits.dtype, label_smoothing, smoothing_style)
        self.log_probs, self.reduction = log_probs, reduction
        return _reduce(-(self.q * log_probs).sum(axis=1), reduction)

    def backward(self, g) -> tuple[np.ndarray | None, ...]:
        n = self.q.shape[0]
        per_row = _reduce_grad(g, self.reduction, n)[:, None]
        dx = (np.exp(self.log_probs) * self.q.sum(axis=1, keepdims=True) - self.q) * per_row
        return dx.astype(self.log_probs.dtype), None


class NLLLoss(Function):
    """loss_n = -log_probs[n, target_n].   d/dlog_probs[n, target_n] = -1."""

    amp = "float32"  # autocast: computed in float32 (minigrad/amp.py)

    def forward(self, log_probs, target, reduction="mean") -> np.ndarray:
        if log_probs.ndim != 2 or target.ndim != 1 or target.shape[0] != log_probs.shape[0]:
            raise ValueError(
                f"nll_loss: expected (N, C) log-probabilities and (N,) targets, got "
                f"{log_probs.shape} and {target.shape}"
            )
        if target.dtype.kind not in "iu" or (target.size and (target.min() < 0 or target.max() >= log_probs.shape[1])):
            raise ValueError(f"nll_loss: targets must be integer classes in [0, {log_probs.shape[1]})")
        self.shape, self.target, self.reduction = log_probs.shape, target, reduction
        return _reduce(-log_probs[np.arange(target.shape[0]), target], reduction)

    def backward(self, g) -> tuple[np.ndarray | None, ...]:
        dx = np.zeros(self.shape, dtype=np.result_type(g, np.float32))
        dx[np.arange(self.shape[0]), self.target] = -_reduce_grad(g, self.reduction, self.shape[0])
        return dx, None


class BCEWithLogits(Function):
    """loss = max(x, 0) - x y + log(1 + e^-|x|)  (= -[y log s(x) + (1-y) log(1-s(x))], stable).
    dx = sigmoid(x) - y,  dy = -x."""

    amp = "float32"  # autocast: computed in float32 (minigrad/amp.py)

    def forward(self, x, y, reduction="mean") -> np.ndarray:
        if x.shape != y.shape:
            raise ValueError(f"binary_cross_entropy_with_logits: input {x.shape} and target {y.shape} differ")
        self.x, self.y, self.reduction = x, y, reduction
        loss = np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))
        return _reduce(loss.astype(x.dtype), reduction)

    def backward(self, g) -> tuple[np.ndarray | None, ...]:
        s = np.exp(-np.logaddexp(0, -self.x))
        scale = g / self.x.size if self.reduction == "mean" else g
        return (s - self.y) * scale, -self.x * scale if self.needs_input_grad[1] else None
