"""Stateless forms of every op and layer, as ``torch.nn.functional``."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from ..dtypes import array_of
from ..ops import (  # noqa: F401  (re-exported as nn.functional)
    adaptive_avg_pool2d,
    avg_pool2d,
    conv2d,
    leaky_relu,
    log_softmax,
    max_pool2d,
    mean,
    relu,
    sigmoid,
    softmax,
    tanh,
    where,
)
from ..ops.loss import BCEWithLogits, CrossEntropy, NLLLoss
from ..ops.norm import batch_norm, group_norm, instance_norm, layer_norm  # noqa: F401  (re-exported as nn.functional)
from ..tensor import Tensor


def _target(t):
    return t if isinstance(t, Tensor) else Tensor(np.asarray(t))


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "none":
        return loss
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    return loss.mean() if reduction == "mean" else loss.sum()


def _class_weighted(log_probs, target, weight, ignore_index, reduction, label_smoothing=0.0):
    """PyTorch's weighted / ignore_index form of the negative log-likelihood on log-probabilities
    (N, C): loss_n = w[y_n] ((1 - eps) (-log p[n, y_n]) ) + (eps / C) sum_c w[c] (-log p[n, c])
    (w = 1 without weights), zero for ignored rows; "mean" divides by the sum of w[y_n] over
    the rows kept (by their count without weights)."""
    y = np.asarray(target.data)
    keep = y != ignore_index
    safe = np.where(keep, y, 0).astype(np.int64)
    classes = log_probs.shape[1]
    w = np.ones(classes, log_probs.dtype) if weight is None else np.asarray(array_of(weight), log_probs.dtype)
    row_weight = np.where(keep, w[safe], 0).astype(log_probs.dtype)
    picked = -log_probs.gather(1, Tensor(safe[:, None]))[:, 0]
    loss = picked * Tensor(row_weight * (1.0 - label_smoothing))
    if label_smoothing:
        weight_tensor = Tensor(w) if weight is None else _target(weight).to(log_probs.dtype)
        smooth = -(log_probs * weight_tensor).sum(dim=1) * (label_smoothing / classes)
        loss = loss + smooth * Tensor(keep.astype(log_probs.dtype))
    if reduction == "mean":
        return loss.sum() / Tensor(np.asarray(row_weight.sum(), log_probs.dtype))
    return _reduce(loss, reduction)


def cross_entropy(
    logits: Tensor,
    target: Tensor | ArrayLike,
    weight: Tensor | ArrayLike | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    smoothing_style: str = "uniform",
) -> Tensor:
    """Softmax cross-entropy on logits (N, C).  ``target``: class indices (N,) or
    probabilities (N, C).  loss_n = -sum_c q_nc log softmax(x_n)_c, where q is the target,
    smoothed by ``label_smoothing`` = eps: ``"uniform"`` (PyTorch) q = (1-eps) onehot + eps/K;
    ``"others"`` (the lecture) 1-eps on the true class and eps/(K-1) on every other class.
    ``weight`` (per class) and ``ignore_index`` (a class index whose rows count for nothing)
    as in PyTorch, for class-index targets. Class weights with probability targets, or with
    ``"others"`` smoothing, are not supported (NotImplementedError)."""
    target = _target(target)
    if target.ndim == 1 and smoothing_style == "uniform":
        ignored = ignore_index is not None and bool(np.any(target.data == ignore_index))
        if weight is not None or ignored:
            return _class_weighted(log_softmax(logits, dim=1), target, weight, ignore_index, reduction, label_smoothing)
    elif weight is not None:
        raise NotImplementedError("cross_entropy: class weights need class-index targets and uniform smoothing")
    return CrossEntropy.apply(
        logits, target, reduction=reduction, label_smoothing=label_smoothing, smoothing_style=smoothing_style
    )


def nll_loss(
    log_probs: Tensor,
    target: Tensor | ArrayLike,
    weight: Tensor | ArrayLike | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> Tensor:
    """loss_n = -log_probs[n, target_n]; pair with ``log_softmax``. ``weight`` and
    ``ignore_index`` as in PyTorch."""
    target = _target(target)
    if weight is not None or (ignore_index is not None and bool(np.any(target.data == ignore_index))):
        return _class_weighted(log_probs, target, weight, ignore_index, reduction)
    return NLLLoss.apply(log_probs, target, reduction=reduction)


def binary_cross_entropy_with_logits(
    logits: Tensor,
    target: Tensor,
    weight: Tensor | ArrayLike | None = None,
    reduction: str = "mean",
    pos_weight: Tensor | ArrayLike | None = None,
) -> Tensor:
    """loss = -w [p y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))], computed stably from
    logits; ``weight`` w scales each element, ``pos_weight`` p the positive term (PyTorch's)."""
    if weight is None and pos_weight is None:
        return BCEWithLogits.apply(logits, _target(target), reduction=reduction)
    y = _target(target).to(logits.dtype)
    # -log sigmoid(x) = log(1 + exp(-|x|)) + max(-x, 0), without overflow
    neg_log_sigmoid = (1 + (-logits.abs()).exp()).log() + (-logits).relu()
    scale = 1 if pos_weight is None else 1 + (_target(pos_weight).to(logits.dtype) - 1) * y
    loss = (1 - y) * logits + scale * neg_log_sigmoid
    if weight is not None:
        loss = loss * _target(weight).to(logits.dtype)
    return _reduce(loss, reduction)


def binary_cross_entropy(
    input: Tensor, target: Tensor | ArrayLike, weight: Tensor | ArrayLike | None = None, reduction: str = "mean"
) -> Tensor:
    """loss = -w [y log p + (1 - y) log(1 - p)] on probabilities p; each log is clamped at -100,
    as PyTorch does, so p = 0 or 1 gives a finite loss."""
    y = _target(target).to(input.dtype)
    log_p = input.log().clip(min=-100.0)
    log_not_p = (1 - input).log().clip(min=-100.0)
    loss = -(y * log_p + (1 - y) * log_not_p)
    if weight is not None:
        loss = loss * _target(weight).to(input.dtype)
    return _reduce(loss, reduction)


def mse_loss(input: Tensor, target: Tensor | ArrayLike, reduction: str = "mean") -> Tensor:
    """loss = (x - y)^2, averaged (``mean``), summed (``sum``) or per element (``none``)."""
    return _reduce((input - target) ** 2, reduction)


def l1_loss(input: Tensor, target: Tensor | ArrayLike, reduction: str = "mean") -> Tensor:
    """loss = |x - y|."""
    return _reduce((input - target).abs(), reduction)


def smooth_l1_loss(input: Tensor, target: Tensor | ArrayLike, reduction: str = "mean", beta: float = 1.0) -> Tensor:
    """loss = 0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta (d = x - y)."""
    d = (input - target).abs()
    if beta == 0:
        return _reduce(d, reduction)
    return _reduce(where(d < beta, 0.5 * d * d / beta, d - 0.5 * beta), reduction)


def huber_loss(input: Tensor, target: Tensor | ArrayLike, reduction: str = "mean", delta: float = 1.0) -> Tensor:
    """loss = 0.5 d^2 where |d| <= delta, else delta (|d| - 0.5 delta) (d = x - y)."""
    d = (input - target).abs()
    return _reduce(where(d <= delta, 0.5 * d * d, delta * (d - 0.5 * delta)), reduction)


def kl_div(input: Tensor, target: Tensor | ArrayLike, reduction: str = "mean", log_target: bool = False) -> Tensor:
    """loss = q (log q - input) for log-probabilities ``input`` and probabilities q (0 where
    q = 0), or exp(t) (t - input) with ``log_target``. ``"batchmean"`` divides the sum by the
    batch size (the true KL divergence); ``"mean"`` averages over every element, as PyTorch."""
    t = _target(target).to(input.dtype)
    if log_target:
        loss = t.exp() * (t - input)
    else:
        safe = where(t > 0, t, 1.0)
        loss = where(t > 0, t * (safe.log() - input), 0.0)
    if reduction == "batchmean":
        return loss.sum() / input.shape[0]
    return _reduce(loss, reduction)


# ---------------------------------------------------------------------------- layers (minigrad.nn)
def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = x W^T + b with W of shape (out_features, in_features), as ``torch.nn.functional.linear``.
    One fused op on the GEMM (no transposed copy of W)."""
    from ..ops.linalg import Linear

    return Linear.apply(input, weight) if bias is None else Linear.apply(input, weight, bias)


def _keep_mask(shape, p, dtype) -> np.ndarray:
    """Bernoulli(1 - p) keep-mask (1 keeps, 0 drops) from the global generator."""
    from ..random import generator

    return (generator().random(shape, dtype=np.float32) >= p).astype(dtype)


DROPOUT_MODES = ("inverted", "scale_at_test")


def check_dropout(p: float, mode: str = "inverted", who: str = "dropout") -> float:
    """The one check of a drop probability (0 <= p <= 1; NaN is refused) and a dropout mode,
    for the functional ops and every dropout-like layer; returns ``p`` as a float."""
    try:
        p = float(p)
    except (TypeError, ValueError):
        raise TypeError(f"{who}: the drop probability must be a number, got {p!r}") from None
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{who}: the drop probability must be in [0, 1], got {p}")
    if mode not in DROPOUT_MODES:
        raise ValueError(f"{who}: mode must be 'inverted' or 'scale_at_test', got {mode!r}")
    return p


def dropout(input: Tensor, p: float = 0.5, training: bool = True, mode: str = "inverted") -> Tensor:
    """Zeroes each element independently with probability ``p`` (the drop probability).

    ``mode="inverted"`` (PyTorch's): in training y = x * m / (1 - p) with m ~ Bernoulli(1 - p),
    so E[y] = x, and at test time y = x.
    ``mode="scale_at_test"`` (the original weight-scaling inference rule): in training
    y = x * m, unscaled; at test time y = (1 - p) x, which matches the training expectation.
    Both give the same expected activation; inverted dropout keeps inference free of work."""
    p = check_dropout(p, mode)
    if not training:
        return input if mode == "inverted" or p == 0 else input * (1.0 - p)
    if p == 0:
        return input
    return _apply_mask(input, input.shape, p, mode)


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Channel dropout: zeroes whole feature maps x[n, c] with probability ``p`` and scales the
    kept ones by 1 / (1 - p). Neighbouring pixels are strongly correlated, so dropping single
    pixels of a conv output barely regularises; dropping channels does."""
    p = check_dropout(p, who="dropout2d")
    if input.ndim < 3:
        raise ValueError(f"dropout2d expects (N, C, H, W) or (N, C, L) input, got shape {input.shape}")
    if not training or p == 0:
        return input
    return _apply_mask(input, input.shape[:2] + (1,) * (input.ndim - 2), p, "inverted")


def _apply_mask(input, mask_shape, p, mode):
    mask = _keep_mask(mask_shape, p, input.dtype)
    if mode == "inverted":
        mask *= 0.0 if p == 1 else 1.0 / (1.0 - p)
    return input * Tensor(mask)


def gaussian_noise(input: Tensor, std: float, training: bool = True) -> Tensor:
    """y = x + n with n ~ N(0, std^2) drawn from the global generator, in training only
    (noise injection on inputs or hidden units); y = x at test time."""
    if std < 0:
        raise ValueError(f"gaussian_noise std must be non-negative, got {std}")
    if not training or std == 0:
        return input
    from ..random import generator

    drawn = np.float64 if input.dtype == np.float64 else np.float32  # numpy draws no bfloat16
    noise = generator().standard_normal(input.shape, dtype=drawn)
    noise *= std
    return input + Tensor(noise.astype(input.dtype, copy=False))


def flatten(input: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merges dimensions ``start_dim``..``end_dim`` into one (a view)."""
    from ..ops import flatten as flatten_op

    return flatten_op(input, start_dim, end_dim)
