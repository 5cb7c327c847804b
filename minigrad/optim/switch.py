"""``SwitchOptimizer``: the lecture's advice as a tool -- start with Adam (fast progress with
little tuning), finish with SGD + momentum (often generalises better)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ..tensor import Tensor
from .adam import Adam
from .optimizer import Optimizer
from .sgd import SGD

if TYPE_CHECKING:  # annotations only
    from collections.abc import Iterable
    from typing import Any, Callable


class SwitchOptimizer:
    """Runs ``first`` until the switch, then ``second``; both optimise the same Tensors, so the
    parameters carry over as they are (the second starts with fresh state, e.g. an empty
    momentum buffer). Call ``step()`` every batch and ``epoch_end(metric)`` once per epoch.

    The switch happens after epoch ``switch_epoch`` (counting from 1) when it is given, or once
    the metric (lower is better) has not improved by a relative ``threshold`` for ``patience``
    epochs in a row, whichever comes first.
    """

    def __init__(
        self,
        first: Optimizer,
        second: Optimizer,
        switch_epoch: int | None = None,
        patience: int | None = None,
        threshold: float = 1e-4,
    ):
        if switch_epoch is None and patience is None:
            raise ValueError("give switch_epoch, patience, or both")
        ids = lambda opt: [id(p) for g in opt.param_groups for p in g["params"]]  # noqa: E731
        if sorted(ids(first)) != sorted(ids(second)):
            raise ValueError("both optimizers must optimise the same parameters")
        self.first, self.second = first, second
        self.switch_epoch, self.patience, self.threshold = switch_epoch, patience, threshold
        self.epoch = 0
        self.switched_at: int | None = None
        self._best = math.inf
        self._stalled = 0

    @classmethod
    def adam_then_sgd(
        cls,
        params: Iterable[Tensor] | Iterable[dict],
        adam_lr: float = 1e-3,
        sgd_lr: float = 1e-2,
        momentum: float = 0.9,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        **switch: Any,
    ):
        params = list(params)
        return cls(
            Adam(params, lr=adam_lr, weight_decay=weight_decay),
            SGD(params, lr=sgd_lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay),
            **switch,
        )

    @property
    def active(self) -> Optimizer:
        return self.first if self.switched_at is None else self.second

    @property
    def param_groups(self) -> list[dict]:
        return self.active.param_groups

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.active.zero_grad(set_to_none)

    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor | None:
        return self.active.step(closure)

    def epoch_end(self, metric: float | None = None) -> bool:
        """Records the end of an epoch; returns True when this call made the switch."""
        self.epoch += 1
        if self.switched_at is not None:
            return False
        if metric is not None and self.patience is not None:
            metric = float(getattr(metric, "item", lambda: metric)())
            if metric < self._best * (1 - self.threshold):
                self._best, self._stalled = metric, 0
            else:
                self._stalled += 1
        due = self.switch_epoch is not None and self.epoch >= self.switch_epoch
        stalled = self.patience is not None and self._stalled >= self.patience
        if due or stalled:
            self.switched_at = self.epoch
            return True
        return False

    def state_dict(self) -> dict:
        return {
            "first": self.first.state_dict(),
            "second": self.second.state_dict(),
            "epoch": self.epoch,
            "switched_at": self.switched_at,
            "best": self._best,
            "stalled": self._stalled,
        }

    def load_state_dict(self, state: dict) -> None:
        self.first.load_state_dict(state["first"])
        self.second.load_state_dict(state["second"])
        self.epoch, self.switched_at = state["epoch"], state["switched_at"]
        self._best, self._stalled = state["best"], state["stalled"]
