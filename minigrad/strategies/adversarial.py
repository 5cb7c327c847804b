"""Adversarial examples and adversarial training.

A network that is nearly linear around its inputs can be fooled by a tiny perturbation that
moves every input value a little in the direction that raises the loss. The fast gradient sign
method (Goodfellow, Shlens and Szegedy, 2015) takes one such step:

    x_adv = x + eps * sign(grad_x J(theta, x, y))

so ``||x_adv - x||_inf = eps`` (or less where the gradient is exactly zero). The gradient with
respect to the *input* comes from the tape: ``x`` becomes a leaf that requires grad, the
parameters are frozen for that backward pass (no weight gradients are computed or accumulated).

Adversarial training mixes clean and FGSM examples: the objective
``alpha J(x, y) + (1 - alpha) J(x_adv, y)`` with ``alpha = 1/2`` is the mean loss over a batch
holding each clean example and its adversarial twin, which :class:`AdversarialBatches` builds
from any loader, so the ordinary ``fit`` trains on it:

    fit(model, optimizer, F.cross_entropy, AdversarialBatches(train_loader, model, eps=0.1), val_loader)
"""

from __future__ import annotations

import numpy as np

from ..autograd import enable_grad
from ..dtypes import array_of
from ..nn import functional as F
from ..tensor import Tensor


def input_gradient(model, x, y, loss_fn=F.cross_entropy) -> np.ndarray:
    """grad_x loss_fn(model(x), y) as a numpy array, the model's parameters untouched (their
    ``requires_grad`` flags are switched off for the pass and restored, so no ``.grad`` changes)."""
    data = np.array(array_of(x), copy=True)
    if data.dtype.kind != "f":
        raise TypeError(f"input_gradient: inputs must be floating point, got {data.dtype}")
    target = y if isinstance(y, Tensor) else Tensor(np.asarray(y))
    if len(target) != len(data):
        raise ValueError(f"input_gradient: {len(data)} inputs but {len(target)} targets")
    params = list(model.parameters()) if hasattr(model, "parameters") else []
    flags = [p.requires_grad for p in params]
    leaf = Tensor(data, requires_grad=True)
    try:
        for p in params:
            p.requires_grad_(False)
        with enable_grad():
            loss = loss_fn(model(leaf), target)
            if loss.numel() != 1:
                raise ValueError(f"input_gradient: loss_fn must return a scalar, got shape {loss.shape}")
            loss.backward()
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)
    return leaf.grad.data


def fgsm(model, x, y, eps: float, loss_fn=F.cross_entropy, clip: tuple[float, float] | None = None) -> Tensor:
    """The fast gradient sign method: x + eps * sign(grad_x loss_fn(model(x), y)).

    The model runs in whatever mode it is in (call ``model.eval()`` first to attack the deployed
    network). ``clip=(low, high)`` keeps the result in the valid input range (which can make
    some changes smaller than eps). Returns a new Tensor that does not require grad."""
    if eps < 0:
        raise ValueError(f"fgsm: eps must be non-negative, got {eps}")
    data = np.asarray(array_of(x))
    step = np.sign(input_gradient(model, data, y, loss_fn)).astype(data.dtype)
    adversarial = data + data.dtype.type(eps) * step
    if clip is not None:
        adversarial = np.clip(adversarial, clip[0], clip[1])
    return Tensor(adversarial.astype(data.dtype, copy=False))


class AdversarialBatches:
    """Wraps a loader of (x, y, ...) batches: each batch becomes the clean examples followed by
    their FGSM versions (made with the model's current weights, in eval mode so batch-norm
    statistics are not disturbed), targets repeated. The mean loss over such a batch is
    1/2 J(x, y) + 1/2 J(x_adv, y), the adversarial training objective.

    ``fraction`` < 1 perturbs only that share of each batch (the first examples) and appends
    those; 0 gives the clean batches unchanged."""

    def __init__(
        self,
        loader,
        model,
        eps: float,
        loss_fn=F.cross_entropy,
        fraction: float = 1.0,
        clip: tuple[float, float] | None = None,
    ):
        if not 0 <= fraction <= 1:
            raise ValueError(f"AdversarialBatches: fraction must be in [0, 1], got {fraction}")
        if eps < 0:
            raise ValueError(f"AdversarialBatches: eps must be non-negative, got {eps}")
        self.loader, self.model, self.eps, self.loss_fn = loader, model, float(eps), loss_fn
        self.fraction, self.clip = float(fraction), clip

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for x, y, *rest in self.loader:
            count = int(round(self.fraction * len(y)))
            if count == 0:
                yield (x, y, *rest)
                continue
            was_training = getattr(self.model, "training", False)
            self.model.eval()
            try:
                x_adv = fgsm(self.model, x.data[:count], Tensor(y.data[:count]), self.eps, self.loss_fn, self.clip)
            finally:
                self.model.train(was_training)
            yield (Tensor(np.concatenate([x.data, x_adv.data])), Tensor(np.concatenate([y.data, y.data[:count]])))
