"""``minigrad lab``: the experiments the lectures describe, run on the real engine.

Each experiment returns a :class:`Result`: a long-form table (one row per measured value), the
lecture's claim in one sentence, the measured headline numbers, and whether the claim held this
time by a stated criterion; ``Result.write(folder)`` writes ``results.csv``, ``summary.md`` and
the figures. ``run(name, out=None, quick=False, seed=0)`` runs one; ``EXPERIMENTS`` lists them.
"""

from __future__ import annotations

import os

from . import architecture, normalisation, optimisation, regularisation, search
from .core import EXPERIMENTS, Result

# The order of the lectures (and of ``minigrad lab``'s list).
ORDER = (
    "optimizers",
    "init",
    "batchnorm-lr",
    "norms-batch-size",
    "adam-bias-correction",
    "lr-too-high",
    "dropout-ensemble",
    "l1-vs-l2",
    "early-stopping",
    "hyperparameter-search",
    "degradation",
    "augmentation",
    "label-smoothing",
    "data-normalisation",
    "noise-injection",
    "pretraining",
)


def describe() -> list[tuple[str, str]]:
    """(name, one-line description) of every experiment, in the lectures' order."""
    return [(name, EXPERIMENTS[name][0]) for name in ORDER]


def run(name: str, out: str | os.PathLike | None = None, quick: bool = False, seed: int = 0) -> Result:
    """Runs the experiment ``name``; with ``out``, writes its files there. ``quick``: a smaller
    version that finishes in seconds (the tests run it)."""
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}: choose one of {', '.join(ORDER)}")
    if int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be a non-negative whole number, got {seed!r}")
    result = EXPERIMENTS[name][1](bool(quick), int(seed))
    if out is not None:
        result.write(out)
    return result


__all__ = ["EXPERIMENTS", "ORDER", "Result", "describe", "run"]
