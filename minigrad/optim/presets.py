"""Optimisers by name, for command lines, configuration files and hyper-parameter searches:
``optim.create("nesterov", model.parameters(), lr=0.05)`` is ``SGD(params, lr=0.05,
momentum=0.9, nesterov=True)``. Each name has a learning rate that trains the bundled models
well, used when ``lr`` is not given."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .adadelta import Adadelta
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

if TYPE_CHECKING:  # annotations only
    from collections.abc import Iterable
    from typing import Any

    from ..tensor import Tensor

# name: (class, fixed options, default learning rate)
PRESETS = {
    "sgd": (SGD, {}, 0.05),
    "momentum": (SGD, {"momentum": 0.9}, 0.05),
    "nesterov": (SGD, {"momentum": 0.9, "nesterov": True}, 0.05),
    "adagrad": (Adagrad, {}, 0.01),
    "rmsprop": (RMSprop, {}, 1e-3),
    "adadelta": (Adadelta, {}, 1.0),
    "adam": (Adam, {}, 2e-3),
    "adamw": (AdamW, {}, 2e-3),
}
OPTIMIZERS = tuple(PRESETS)


def default_lr(name: str) -> float:
    return _preset(name)[2]


def create(name: str, params: Iterable[Tensor] | Iterable[dict], lr: float | None = None, **options: Any) -> Optimizer:
    """The optimiser called ``name`` (one of :data:`OPTIMIZERS`) over ``params``; ``lr``
    defaults to the name's own rate, and ``options`` (``weight_decay=...``) override the preset's."""
    cls, preset, rate = _preset(name)
    return cls(params, lr=rate if lr is None else lr, **{**preset, **options})


def _preset(name: str):
    if name not in PRESETS:
        raise ValueError(f"unknown optimizer {name!r}: choose one of {', '.join(OPTIMIZERS)}")
    return PRESETS[name]
