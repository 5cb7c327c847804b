"""RMSProp: AdaGrad with a leaky (exponentially weighted) average of squared gradients."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import _C
from .optimizer import Optimizer, _datas, _grads, check_range

if TYPE_CHECKING:  # annotations only
    from collections.abc import Iterable

    from ..tensor import Tensor


class RMSprop(Optimizer):
    r"""RMSProp (Hinton's lecture 6e, 2012), with PyTorch's options::

        v_0 = 0, a_0 = 0, b_0 = 0
        for t = 1, 2, ...:
            g <- grad f(theta)  (+ weight_decay * theta)
            v <- alpha * v + (1 - alpha) * g^2
            if centered:  a <- alpha * a + (1 - alpha) * g;   d <- sqrt(v - a^2) + eps
            else:         d <- sqrt(v) + eps
            if momentum > 0:  b <- momentum * b + g / d;   theta <- theta - lr * b
            else:             theta <- theta - lr * g / d

    ``centered`` divides by an estimate of the gradient's standard deviation instead of its
    root mean square.
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
        *,
        maximize: bool = False,
    ):
        super().__init__(
            params,
            dict(
                lr=lr,
                alpha=alpha,
                eps=eps,
                weight_decay=weight_decay,
                momentum=momentum,
                centered=centered,
                maximize=maximize,
            ),
        )

    def _check_hyperparameters(self, group):
        super()._check_hyperparameters(group)
        check_range("epsilon value", group["eps"], low_open=True)
        check_range("momentum value", group["momentum"])
        check_range("weight_decay value", group["weight_decay"])
        check_range("alpha value", group["alpha"], high=1.0, high_open=False)

    def _bucket_key(self, p):
        return p.data.dtype

    def _update(self, group, params):
        square_avgs = self._state_arrays(params, "square_avg")
        grad_avgs = self._state_arrays(params, "grad_avg") if group["centered"] else None
        buffers = self._state_arrays(params, "momentum_buffer") if group["momentum"] > 0 else None
        for p in params:
            self.state[p]["step"] = self.state[p].get("step", 0) + 1
        _C.rmsprop_step(
            _datas(params),
            _grads(params),
            square_avgs,
            grad_avgs,
            buffers,
            lr=group["lr"],
            alpha=group["alpha"],
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            momentum=group["momentum"],
            centered=group["centered"],
            maximize=group["maximize"],
        )
