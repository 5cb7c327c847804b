"""Curriculum learning (Bengio et al., 2009): show the easy examples first, then harder ones.

Two ingredients, as in Hacohen and Weinshall (2019):

* a **difficulty score** per training example: given (e.g. image noise, sentence length), or
  the loss a *reference model* (one trained before, or a small quick one) assigns to it
  (:func:`difficulty_from_model`);
* a **pacing function** ``fraction(epoch)`` saying how much of the data, easiest first, the
  training pool holds at each epoch; it grows to 1, after which training is ordinary.

:class:`CurriculumSampler` combines them and plugs into :class:`~minigrad.data.DataLoader` as its
``sampler``: each epoch it yields the current pool's indices in a random order (global
generator), so within the pool batches are still shuffled.

    difficulty = difficulty_from_model(reference, x_train, y_train)
    sampler = CurriculumSampler(difficulty, linear_pacing(start=0.2, full_at=5))
    loader = DataLoader(TensorDataset(x_train, y_train), batch_size=64, sampler=sampler)
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from ..dtypes import array_of
from ..nn import functional as F
from ..random import generator
from ..tensor import Tensor
from ..train.evaluation import evaluation_mode


# ------------------------------------------------------------------------- pacing functions
def _check_start(start: float) -> float:
    if not 0 < start <= 1:
        raise ValueError(f"pacing: the starting fraction must be in (0, 1], got {start}")
    return float(start)


def linear_pacing(start: float, full_at: int) -> Callable[[int], float]:
    """fraction(e) = start + (1 - start) * e / full_at for epochs e = 0, 1, ... (0 is the first),
    reaching the whole data set at epoch ``full_at``."""
    start = _check_start(start)
    if full_at < 1:
        raise ValueError(f"linear_pacing: full_at must be at least 1, got {full_at}")
    return lambda epoch: min(1.0, start + (1.0 - start) * epoch / full_at)


def root_pacing(start: float, full_at: int) -> Callable[[int], float]:
    """fraction(e) = sqrt(start^2 + (1 - start^2) e / full_at): grows fast at first, then slowly,
    giving the model more epochs on the newly added, harder examples (Platanios et al., 2019)."""
    start = _check_start(start)
    if full_at < 1:
        raise ValueError(f"root_pacing: full_at must be at least 1, got {full_at}")
    return lambda epoch: min(1.0, math.sqrt(start**2 + (1.0 - start**2) * epoch / full_at))


def step_pacing(start: float, increase: float, every: int) -> Callable[[int], float]:
    """fraction(e) = start * increase ** (e // every): the pool grows by the factor ``increase``
    every ``every`` epochs (the "fixed exponential pacing" of Hacohen and Weinshall)."""
    start = _check_start(start)
    if increase <= 1 or every < 1:
        raise ValueError(f"step_pacing: need increase > 1 and every >= 1, got {increase} and {every}")
    return lambda epoch: min(1.0, start * increase ** (epoch // every))


# ------------------------------------------------------------------------- difficulty
def difficulty_from_model(model, inputs, targets, loss_fn=None, batch_size: int = 256) -> np.ndarray:
    """Per-example difficulty: the loss of the reference ``model`` on each example (eval mode,
    no tape). ``loss_fn(output, target, reduction="none")`` defaults to cross-entropy."""
    loss_fn = loss_fn or F.cross_entropy
    inputs = np.asarray(array_of(inputs))
    targets = np.asarray(array_of(targets))
    if len(inputs) != len(targets):
        raise ValueError(f"difficulty_from_model: {len(inputs)} inputs but {len(targets)} targets")
    scores = []
    with evaluation_mode(model):
        for start in range(0, len(inputs), batch_size):
            output = model(Tensor(inputs[start : start + batch_size]))
            scores.append(loss_fn(output, Tensor(targets[start : start + batch_size]), reduction="none").data)
    return np.concatenate(scores).astype(np.float64)


# ------------------------------------------------------------------------- the sampler
class CurriculumSampler:
    """Yields, each epoch, the indices of the easiest ``ceil(fraction(epoch) * N)`` examples
    (lowest ``difficulty``; ties broken by index) in a random order.

    The epoch counter starts at 0 and advances each time iteration begins, so the DataLoader's
    ``len()`` before an epoch (``len(sampler)``) is the size of the pool that epoch will use.
    Call :meth:`set_epoch` to jump (e.g. after resuming from a checkpoint).

    Args:
        difficulty: one score per example; lower is easier.
        pacing: ``fraction(epoch) -> (0, 1]``; non-decreasing. ``None``: the whole set every epoch,
            ordered easy to hard if ``shuffle=False`` (a fixed curriculum).
        shuffle: shuffle the pool each epoch (default). ``False`` keeps it sorted easy to hard.
        labels: class labels, to keep the pool class-balanced: examples are ranked by their
            difficulty *within their class* (as a quantile), so a pool of 20% holds the easiest
            20% of every class. Without it an early pool may hold only the easiest classes, and
            the model learns nothing about the others until they enter.
    """

    def __init__(self, difficulty, pacing: Callable[[int], float] | None = None, shuffle: bool = True, labels=None):
        difficulty = np.asarray(array_of(difficulty), dtype=np.float64)
        if difficulty.ndim != 1 or len(difficulty) == 0:
            raise ValueError(
                f"CurriculumSampler: difficulty must be a non-empty 1-D array, got shape {difficulty.shape}"
            )
        if not np.all(np.isfinite(difficulty)):
            raise ValueError("CurriculumSampler: difficulty scores must be finite")
        self.order = np.argsort(difficulty, kind="stable")  # easiest first
        if labels is not None:
            labels = np.asarray(array_of(labels))
            if labels.shape != difficulty.shape:
                raise ValueError(f"CurriculumSampler: {labels.shape} labels for {difficulty.shape} difficulty scores")
            quantile = np.empty(len(difficulty))
            for label in np.unique(labels):
                members = self.order[labels[self.order] == label]  # this class, easiest first
                quantile[members] = (np.arange(len(members)) + 1) / len(members)
            self.order = np.lexsort((difficulty, quantile))  # by within-class quantile, then difficulty
        self.pacing = pacing if pacing is not None else (lambda epoch: 1.0)
        self.shuffle = bool(shuffle)
        self.epoch = 0

    def pool_size(self, epoch: int) -> int:
        """How many examples the pool holds at ``epoch`` (at least one)."""
        fraction = float(self.pacing(epoch))
        if not 0 < fraction <= 1:
            raise ValueError(
                f"CurriculumSampler: the pacing function gave {fraction} at epoch {epoch}; "
                f"it must return a fraction in (0, 1]"
            )
        return max(1, min(len(self.order), math.ceil(fraction * len(self.order) - 1e-9)))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.pool_size(self.epoch)

    def __iter__(self):
        pool = self.order[: self.pool_size(self.epoch)]
        self.epoch += 1
        if self.shuffle:
            pool = pool[generator().permutation(len(pool))]
        return iter(pool.tolist())
