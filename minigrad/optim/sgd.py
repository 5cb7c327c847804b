"""Stochastic gradient descent with momentum, dampening, Nesterov and weight decay."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import _C
from .optimizer import Optimizer, _datas, _grads, check_range

if TYPE_CHECKING:  # annotations only
    from collections.abc import Iterable

    from ..tensor import Tensor


class SGD(Optimizer):
    r"""Stochastic gradient descent, PyTorch's form::

        for t = 1, 2, ...:
            g <- grad f(theta)                    (negated when maximize)
            if weight_decay != 0:  g <- g + weight_decay * theta
            if momentum != 0:
                b <- g                            if t == 1
                b <- momentum * b + (1 - dampening) * g   otherwise
                g <- g + momentum * b             if nesterov
                g <- b                            otherwise
            theta <- theta - lr * g

    The lecture writes momentum as a velocity that already contains the step size::

        v <- rho * v - eta * g,      theta <- theta + v

    With a constant learning rate the two are the same trajectory: v_t = -eta * b_t (induction:
    v_1 = -eta g_1 = -eta b_1, and v_t = rho v_{t-1} - eta g_t = -eta (rho b_{t-1} + g_t)).
    They differ when the learning rate changes: PyTorch's buffer b is free of eta, so a new
    learning rate applies to the whole accumulated velocity at once, while the lecture's v
    carries the old eta for ~1/(1 - rho) steps. tests/optim/test_sgd.py shows both.

    Nesterov's accelerated gradient is PyTorch's variant (the look-ahead folded into the
    gradient at the current point): theta <- theta - lr (g + momentum b).
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict],
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
    ):
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(
            params,
            dict(
                lr=lr,
                momentum=momentum,
                dampening=dampening,
                weight_decay=weight_decay,
                nesterov=nesterov,
                maximize=maximize,
            ),
        )

    def _check_hyperparameters(self, group):
        super()._check_hyperparameters(group)
        check_range("momentum value", group["momentum"])
        check_range("weight_decay value", group["weight_decay"])
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")

    def _bucket_key(self, p):
        # Parameters seen for the first time start their buffer as a copy of the gradient.
        return p.data.dtype, self.state.get(p, {}).get("momentum_buffer") is None

    def _update(self, group, params):
        momentum = group["momentum"]
        first_step = False
        buffers = None
        if momentum != 0:
            first_step = self.state.get(params[0], {}).get("momentum_buffer") is None
            buffers = self._state_arrays(params, "momentum_buffer")
        _C.sgd_step(
            _datas(params),
            _grads(params),
            buffers,
            lr=group["lr"],
            momentum=momentum,
            dampening=group["dampening"],
            weight_decay=group["weight_decay"],
            nesterov=group["nesterov"],
            maximize=group["maximize"],
            first_step=first_step,
        )
