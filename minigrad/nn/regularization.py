"""Weight penalties and weight noise: regularisers that live outside the layers.

Add a penalty to the data loss, ``loss = F.cross_entropy(model(x), y) + lam * l2_penalty(model)``,
and the tape differentiates it like any other term. By default only *weights* are penalised
(Linear and Conv matrices): biases and normalisation scales/shifts only shift or rescale a
unit, so shrinking them does not reduce the model's capacity and can only hurt the fit.

(Label smoothing, the other output-side regulariser, is an option of
``minigrad.nn.functional.cross_entropy``.)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

from ..autograd import no_grad
from ..random import generator
from ..tensor import Tensor
from .layers.normalization import GroupNorm, LayerNorm, _BatchNorm
from .module import Module

NORMALIZATION_LAYERS = (_BatchNorm, LayerNorm, GroupNorm)  # InstanceNorm2d is a _BatchNorm


def penalised_parameters(
    model: Module, include_biases: bool = False, include_normalization: bool = False
) -> list[Tensor]:
    """The parameters a weight penalty applies to: every parameter of ``model`` except
    those named ``bias`` and those of normalisation layers (unless included explicitly)."""
    selected, seen = [], set()
    for module in model.modules():
        if isinstance(module, NORMALIZATION_LAYERS) and not include_normalization:
            continue
        for name, p in module.named_parameters(recurse=False):
            if (name != "bias" or include_biases) and id(p) not in seen:
                seen.add(id(p))
                selected.append(p)
    return selected


def _weights(params) -> list[Tensor]:
    weights = penalised_parameters(params) if isinstance(params, Module) else list(params)
    if not weights:
        raise ValueError("weight penalty: no parameters selected")
    return weights


def l1_penalty(params: Module | Iterable[Tensor]) -> Tensor:
    """Omega(w) = sum_i |w_i|  (its gradient lam * sign(w) pushes weights to exactly zero:
    sparse solutions). ``params``: a Module (weights selected by
    :func:`penalised_parameters`) or an explicit iterable of tensors."""
    total = None
    for w in _weights(params):
        term = w.abs().sum()
        total = term if total is None else total + term
    return total


def l2_penalty(params: Module | Iterable[Tensor]) -> Tensor:
    """Omega(w) = 1/2 sum_i w_i^2. The factor 1/2 makes the gradient exactly lam * w, so
    ``lam * l2_penalty`` equals an optimiser's ``weight_decay=lam`` under plain SGD."""
    total = None
    for w in _weights(params):
        term = (w * w).sum() * 0.5
        total = term if total is None else total + term
    return total


def elastic_net(params: Module | Iterable[Tensor], l1: float, l2: float) -> Tensor:
    """l1 * sum |w| + l2 * 1/2 sum w^2 (Zou & Hastie, 2005): sparsity from the L1 part,
    stability among correlated weights from the L2 part."""
    weights = _weights(params)
    return l1_penalty(weights) * l1 + l2_penalty(weights) * l2


@contextlib.contextmanager
def weight_noise(model: Module | Iterable[Tensor], std: float) -> Iterator[None]:
    """Perturbs the weights with N(0, std^2) noise for the duration of the block, then
    restores them exactly: ``with weight_noise(model, 0.01): loss = ...; loss.backward()``.

    The forward pass and the gradient are computed at the noisy weights w + n; since
    d(w + n)/dw = 1 the gradient applies to w itself, so call ``optimizer.step()`` after the
    block. A fresh draw each time the block is entered (one per training step). Weights are
    selected as for the penalties (no biases or normalisation parameters)."""
    if std < 0:
        raise ValueError(f"weight_noise std must be non-negative, got {std}")
    weights = _weights(model)
    originals = [w.data.copy() for w in weights]
    with no_grad():
        for w in weights:
            w.add_(generator().standard_normal(w.shape, dtype=w.dtype) * w.dtype.type(std))
    try:
        yield
    finally:
        with no_grad():
            for w, original in zip(weights, originals):
                w.copy_(original)
