"""AdaGrad: per-coordinate step sizes from the running sum of squared gradients."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import _C
from .optimizer import Optimizer, _datas, _grads, check_range

if TYPE_CHECKING:  # annotations only
    from collections.abc import Iterable

    from ..tensor import Tensor


class Adagrad(Optimizer):
    r"""AdaGrad (Duchi, Hazan & Singer, 2011)::

        G_0 = initial_accumulator_value
        for t = 1, 2, ...:
            g <- grad f(theta)  (+ weight_decay * theta)
            lr_t <- lr / (1 + (t - 1) * lr_decay)
            G <- G + g * g
            theta <- theta - lr_t * g / (sqrt(G) + eps)

    Defaults are PyTorch's: lr = 0.01 and eps = 1e-10. The lecture suggests eps = 1e-6, which
    damps the first steps of coordinates with tiny gradients more; pass ``eps=1e-6`` for it.
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict],
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
        *,
        maximize: bool = False,
    ):
        super().__init__(
            params,
            dict(
                lr=lr,
                lr_decay=lr_decay,
                eps=eps,
                weight_decay=weight_decay,
                initial_accumulator_value=initial_accumulator_value,
                maximize=maximize,
            ),
        )

    def _check_hyperparameters(self, group):
        super()._check_hyperparameters(group)
        check_range("lr_decay value", group["lr_decay"])
        check_range("weight_decay value", group["weight_decay"])
        check_range("initial_accumulator_value", group["initial_accumulator_value"])
        check_range("epsilon value", group["eps"], low_open=True)

    def _bucket_key(self, p):
        return p.data.dtype, self.state.get(p, {}).get("step", 0)

    def _update(self, group, params):
        sums = self._state_arrays(params, "sum", group["initial_accumulator_value"])
        step = self.state[params[0]].get("step", 0) + 1
        for p in params:
            self.state[p]["step"] = step
        clr = group["lr"] / (1 + (step - 1) * group["lr_decay"])
        _C.adagrad_step(
            _datas(params),
            _grads(params),
            sums,
            clr=clr,
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            maximize=group["maximize"],
        )
