"""The one random generator every random operation in minigrad draws from.

``manual_seed(s)`` makes a run reproducible: initialisers, dropout, data shuffling and
augmentation all use :func:`generator`. ``get_rng_state``/``set_rng_state`` let a training
checkpoint resume the exact random stream.
"""

from __future__ import annotations

import numpy as np

_generator = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Re-seeds the global generator; returns it."""
    global _generator
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"manual_seed expects a non-negative integer, got {seed!r}")
    _generator = np.random.default_rng(int(seed))
    return _generator


def generator() -> np.random.Generator:
    return _generator


def get_rng_state() -> dict:
    return _generator.bit_generator.state


def set_rng_state(state: dict) -> None:
    _generator.bit_generator.state = state
