"""AdaDelta: RMSProp whose step is scaled by the RMS of past updates (no lr needed)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import _C
from .optimizer import Optimizer, _datas, _grads, check_range

if TYPE_CHECKING:  # annotations only
    from collections.abc import Iterable

    from ..tensor import Tensor


class Adadelta(Optimizer):
    r"""AdaDelta (Zeiler, 2012)::

        v_0 = 0, u_0 = 0
        for t = 1, 2, ...:
            g <- grad f(theta)  (+ weight_decay * theta)
            v <- rho * v + (1 - rho) * g^2
            dx <- sqrt(u + eps) / sqrt(v + eps) * g
            u <- rho * u + (1 - rho) * dx^2
            theta <- theta - lr * dx

    The ratio of the two RMS values gives the update the units of theta; ``lr`` = 1 is the
    paper's method (PyTorch's default).
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict],
        lr: float = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        *,
        maximize: bool = False,
    ):
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize))

    def _check_hyperparameters(self, group):
        super()._check_hyperparameters(group)
        check_range("rho value", group["rho"], high=1.0, high_open=False)
        check_range("epsilon value", group["eps"], low_open=True)
        check_range("weight_decay value", group["weight_decay"])

    def _update(self, group, params):
        square_avgs = self._state_arrays(params, "square_avg")
        acc_deltas = self._state_arrays(params, "acc_delta")
        for p in params:
            self.state[p]["step"] = self.state[p].get("step", 0) + 1
        _C.adadelta_step(
            _datas(params),
            _grads(params),
            square_avgs,
            acc_deltas,
            lr=group["lr"],
            rho=group["rho"],
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            maximize=group["maximize"],
        )
