"""Gradient clipping, in place on ``p.grad`` (call between ``backward()`` and ``step()``)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from ..tensor import Tensor

if TYPE_CHECKING:  # annotations only
    from collections.abc import Iterable


def _with_grads(parameters):
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p for p in parameters if p.grad is not None]


def clip_grad_norm_(
    parameters: Tensor | Iterable[Tensor], max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False
) -> Tensor:
    r"""Rescales all gradients together so their joint norm is at most ``max_norm``::

        n = || (||g_1||_p, ..., ||g_k||_p) ||_p          (p = norm_type, inf allowed)
        g_i <- g_i * min(1, max_norm / (n + 1e-6))

    The direction of the whole gradient is kept. Returns n (before clipping) as a 0-d Tensor.
    """
    params = _with_grads(parameters)
    norm_type = float(norm_type)
    if not params:
        return Tensor(np.zeros((), np.float32))
    dtype = params[0].grad.dtype
    if math.isinf(norm_type):
        norms = [np.max(np.abs(p.grad.data)) if p.grad.size else 0.0 for p in params]
        total = float(np.max(norms))
    else:
        norms = [np.linalg.norm(p.grad.data.ravel().astype(np.float64), ord=norm_type) for p in params]
        total = float(np.linalg.norm(np.asarray(norms), ord=norm_type))
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(
            f"the total norm of order {norm_type} of the gradients is non-finite "
            "({total}), so they cannot be clipped; pass error_if_nonfinite=False "
            "to clip anyway"
        )
    coef = dtype.type(min(1.0, float(max_norm) / (total + 1e-6)))
    for p in params:
        p.grad.data *= coef
        p.grad.mark_modified()
    return Tensor(np.asarray(total, dtype=dtype))


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float) -> None:
    """Clamps every gradient element into [-clip_value, clip_value]."""
    clip_value = float(clip_value)
    for p in _with_grads(parameters):
        np.clip(p.grad.data, -clip_value, clip_value, out=p.grad.data)
        p.grad.mark_modified()
