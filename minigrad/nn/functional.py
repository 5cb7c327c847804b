"""Stateless forms of every op and layer, as ``torch.nn.functional``."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

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
)
from ..ops.loss import BCEWithLogits, CrossEntropy, NLLLoss
from ..ops.norm import batch_norm, group_norm, instance_norm, layer_norm  # noqa: F401  (re-exported as nn.functional)
from ..tensor import Tensor


def _target(t):
    return t if isinstance(t, Tensor) else Tensor(np.asarray(t))


def cross_entropy(
    logits: Tensor,
    target: Tensor | ArrayLike,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    smoothing_style: str = "uniform",
) -> Tensor:
    """Softmax cross-entropy on logits (N, C).  ``target``: class indices (N,) or
    probabilities (N, C).  loss_n = -sum_c q_nc log softmax(x_n)_c, where q is the target,
    smoothed by ``label_smoothing`` = eps: ``"uniform"`` (PyTorch) q = (1-eps) onehot + eps/K;
    ``"others"`` (the lecture) 1-eps on the true class and eps/(K-1) on every other class."""
    return CrossEntropy.apply(
        logits, _target(target), reduction=reduction, label_smoothing=label_smoothing, smoothing_style=smoothing_style
    )


def nll_loss(log_probs: Tensor, target: Tensor | ArrayLike, reduction: str = "mean") -> Tensor:
    """loss_n = -log_probs[n, target_n]; pair with ``log_softmax``."""
    return NLLLoss.apply(log_probs, _target(target), reduction=reduction)


def binary_cross_entropy_with_logits(logits: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """loss = -[y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))], computed stably from logits."""
    return BCEWithLogits.apply(logits, target, reduction=reduction)


def mse_loss(input: Tensor, target: Tensor | ArrayLike, reduction: str = "mean") -> Tensor:
    """loss = (x - y)^2, averaged (``mean``), summed (``sum``) or per element (``none``)."""
    squared = (input - target) ** 2
    if reduction == "none":
        return squared
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    return squared.mean() if reduction == "mean" else squared.sum()


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
