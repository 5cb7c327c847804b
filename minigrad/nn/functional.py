"""Stateless forms of every op and layer, as ``torch.nn.functional``."""
from __future__ import annotations

import numpy as np

from ..ops import adaptive_avg_pool2d, avg_pool2d, conv2d, max_pool2d  # noqa: F401
from ..ops import leaky_relu, log_softmax, mean, relu, sigmoid, softmax, tanh  # noqa: F401
from ..ops.loss import BCEWithLogits, CrossEntropy, NLLLoss
from ..tensor import Tensor


def _target(t):
    return t if isinstance(t, Tensor) else Tensor(np.asarray(t))


def cross_entropy(logits, target, reduction: str = "mean", label_smoothing: float = 0.0,
                  smoothing_style: str = "uniform"):
    """Softmax cross-entropy on logits (N, C).  ``target``: class indices (N,) or
    probabilities (N, C).  loss_n = -sum_c q_nc log softmax(x_n)_c, where q is the target,
    smoothed by ``label_smoothing`` = eps: ``"uniform"`` (PyTorch) q = (1-eps) onehot + eps/K;
    ``"others"`` (the lecture) 1-eps on the true class and eps/(K-1) on every other class."""
    return CrossEntropy.apply(logits, _target(target), reduction=reduction,
                              label_smoothing=label_smoothing, smoothing_style=smoothing_style)


def nll_loss(log_probs, target, reduction: str = "mean"):
    """loss_n = -log_probs[n, target_n]; pair with ``log_softmax``."""
    return NLLLoss.apply(log_probs, _target(target), reduction=reduction)


def binary_cross_entropy_with_logits(logits, target, reduction: str = "mean"):
    """loss = -[y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))], computed stably from logits."""
    return BCEWithLogits.apply(logits, target, reduction=reduction)


def mse_loss(input, target, reduction: str = "mean"):
    """loss = (x - y)^2, averaged (``mean``), summed (``sum``) or per element (``none``)."""
    squared = (input - target) ** 2
    if reduction == "none":
        return squared
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    return squared.mean() if reduction == "mean" else squared.sum()
