"""Adam, AdamW and NAdam: momentum on the gradient plus RMSProp's per-coordinate scaling."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import _C
from .optimizer import Optimizer, _datas, _grads, check_range

if TYPE_CHECKING:  # annotations only
    from collections.abc import Iterable

    from ..tensor import Tensor


def _check_adam_like(group):
    check_range("epsilon value", group["eps"], low_open=True)
    beta1, beta2 = group["betas"]
    check_range("beta parameter at index 0", beta1, high=1.0)
    check_range("beta parameter at index 1", beta2, high=1.0)
    check_range("weight_decay value", group["weight_decay"])


class Adam(Optimizer):
    r"""Adam (Kingma & Ba, 2015)::

        m_0 = 0, v_0 = 0
        for t = 1, 2, ...:
            g <- grad f(theta)
            if weight_decay != 0:
                theta <- theta (1 - lr * weight_decay)   if decoupled_weight_decay  (AdamW)
                g <- g + weight_decay * theta            otherwise (L2 penalty in the gradient)
            m <- beta1 * m + (1 - beta1) * g
            v <- beta2 * v + (1 - beta2) * g^2
            if amsgrad:  v_max <- max(v_max, v);  v := v_max
            if bias_correction:
                theta <- theta - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
            else:
                theta <- theta - lr * m / (sqrt(v) + eps)

    ``bias_correction=False`` is the lecture's first Adam. m and v start at zero, so early on
    they are shrunk towards zero by factors (1 - beta1^t) and (1 - beta2^t); with beta2 close to
    1 the denominator is shrunk far more than the numerator and the first steps are too large
    (with beta1 = 0.9, beta2 = 0.999 the very first step is lr * 0.1 / sqrt(0.001) ~ 3.2 lr per
    coordinate instead of lr). The correction divides both bias factors out.
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        *,
        bias_correction: bool = True,
        decoupled_weight_decay: bool = False,
        maximize: bool = False,
    ):
        super().__init__(
            params,
            dict(
                lr=lr,
                betas=tuple(betas),
                eps=eps,
                weight_decay=weight_decay,
                amsgrad=amsgrad,
                bias_correction=bias_correction,
                decoupled_weight_decay=decoupled_weight_decay,
                maximize=maximize,
            ),
        )

    def _check_hyperparameters(self, group):
        super()._check_hyperparameters(group)
        _check_adam_like(group)

    def _bucket_key(self, p):
        return p.data.dtype, self.state.get(p, {}).get("step", 0)

    def _update(self, group, params):
        exp_avgs = self._state_arrays(params, "exp_avg")
        exp_avg_sqs = self._state_arrays(params, "exp_avg_sq")
        max_sqs = self._state_arrays(params, "max_exp_avg_sq") if group["amsgrad"] else None
        step = self.state[params[0]].get("step", 0) + 1
        for p in params:
            self.state[p]["step"] = step
        lr = group["lr"]
        beta1, beta2 = group["betas"]
        if group["bias_correction"]:
            step_size = lr / (1 - beta1**step)
            bias_correction2_sqrt = (1 - beta2**step) ** 0.5
        else:
            step_size, bias_correction2_sqrt = lr, 1.0
        _C.adam_step(
            _datas(params),
            _grads(params),
            exp_avgs,
            exp_avg_sqs,
            max_sqs,
            lr=lr,
            beta1=beta1,
            beta2=beta2,
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            step_size=step_size,
            bias_correction2_sqrt=bias_correction2_sqrt,
            decoupled_weight_decay=group["decoupled_weight_decay"],
            amsgrad=group["amsgrad"],
            maximize=group["maximize"],
        )


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter, 2019): the decay shrinks the
    parameters directly, theta <- theta (1 - lr * weight_decay), instead of entering the
    gradient, so it is not rescaled by 1 / sqrt(v). See :class:`Adam` for the algorithm."""

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        bias_correction: bool = True,
        maximize: bool = False,
    ):
        super().__init__(
            params,
            lr,
            betas,
            eps,
            weight_decay,
            amsgrad,
            bias_correction=bias_correction,
            decoupled_weight_decay=True,
            maximize=maximize,
        )


class NAdam(Optimizer):
    r"""Adam with Nesterov momentum (Dozat, 2016), PyTorch's form with momentum decay::

    mu_t = beta1 (1 - 0.5 * 0.96^(t * momentum_decay)),   P_t = mu_1 ... mu_t
    for t = 1, 2, ...:
        g <- grad f(theta)  (weight decay as in Adam)
        m <- beta1 * m + (1 - beta1) * g
        v <- beta2 * v + (1 - beta2) * g^2
        d <- sqrt(v / (1 - beta2^t)) + eps
        theta <- theta - lr (1 - mu_t) / (1 - P_t) * g / d
                       - lr mu_{t+1} / (1 - P_t mu_{t+1}) * m / d
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict],
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum_decay: float = 4e-3,
        decoupled_weight_decay: bool = False,
        *,
        maximize: bool = False,
    ):
        super().__init__(
            params,
            dict(
                lr=lr,
                betas=tuple(betas),
                eps=eps,
                weight_decay=weight_decay,
                momentum_decay=momentum_decay,
                decoupled_weight_decay=decoupled_weight_decay,
                maximize=maximize,
            ),
        )

    def _check_hyperparameters(self, group):
        super()._check_hyperparameters(group)
        _check_adam_like(group)
        check_range("momentum_decay value", group["momentum_decay"])

    def _bucket_key(self, p):
        state = self.state.get(p, {})
        return p.data.dtype, state.get("step", 0), state.get("mu_product", 1.0)

    def _update(self, group, params):
        exp_avgs = self._state_arrays(params, "exp_avg")
        exp_avg_sqs = self._state_arrays(params, "exp_avg_sq")
        first = self.state[params[0]]
        step = first.get("step", 0) + 1
        lr = group["lr"]
        beta1, beta2 = group["betas"]
        decay = group["momentum_decay"]
        mu = beta1 * (1.0 - 0.5 * 0.96 ** (step * decay))
        mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((step + 1) * decay))
        mu_product = first.get("mu_product", 1.0) * mu
        for p in params:
            self.state[p]["step"] = step
            self.state[p]["mu_product"] = mu_product
        _C.nadam_step(
            _datas(params),
            _grads(params),
            exp_avgs,
            exp_avg_sqs,
            lr=lr,
            beta1=beta1,
            beta2=beta2,
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            bias_correction2=1 - beta2**step,
            grad_coef=-lr * (1.0 - mu) / (1.0 - mu_product),
            avg_coef=(-lr * mu_next) / (1.0 - mu_product * mu_next),
            decoupled_weight_decay=group["decoupled_weight_decay"],
            maximize=group["maximize"],
        )
