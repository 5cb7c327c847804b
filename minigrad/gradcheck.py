"""Numerical gradient checking: the tape's gradients against central finite differences."""

from __future__ import annotations

import numpy as np

from .autograd import no_grad


def central_difference(objective, array: np.ndarray, index: int, eps: float) -> float:
    """(f(x + eps e_i) - f(x - eps e_i)) / (2 eps) for flat entry ``index`` of ``array`` (changed
    in place and restored)."""
    flat = array.reshape(-1)  # a view: array is contiguous
    saved = flat[index]
    flat[index] = saved + eps
    plus = objective()
    flat[index] = saved - eps
    minus = objective()
    flat[index] = saved
    return (plus - minus) / (2 * eps)


def gradcheck(
    fn, inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3, raise_exception: bool = True
) -> bool:
    """Compares the tape's gradient of ``sum(fn(*inputs) * w)`` (a fixed random ``w``) with
    central finite differences ``(f(x + eps) - f(x - eps)) / (2 eps)`` in float64, for every
    input that requires grad. Inputs must be float64 Tensors."""
    from .tensor import Tensor

    for x in inputs:
        if isinstance(x, Tensor) and x.requires_grad and x.dtype != np.float64:
            raise TypeError(f"gradcheck needs float64 inputs, got {x.dtype}")
    out = fn(*inputs)
    weights = np.random.default_rng(0).standard_normal(out.shape)

    def objective() -> float:
        with no_grad():
            return float((fn(*inputs).data * weights).sum())

    for x in inputs:
        if isinstance(x, Tensor):
            x.grad = None
    (out * Tensor(weights)).sum().backward()
    for index, x in enumerate(inputs):
        if not (isinstance(x, Tensor) and x.requires_grad):
            continue
        analytic = np.zeros_like(x.data) if x.grad is None else x.grad.data
        numeric = np.zeros_like(x.data)
        nflat = numeric.reshape(-1)
        for i in range(x.data.size):
            nflat[i] = central_difference(objective, x.data, i, eps)
        if not np.allclose(analytic, numeric, atol=atol, rtol=rtol):
            if raise_exception:
                worst = np.unravel_index(np.abs(analytic - numeric).argmax(), x.shape)
                raise AssertionError(
                    f"gradcheck failed for input {index} of shape {x.shape}: at {worst} "
                    f"analytic {analytic[worst]:.8g} vs numeric {numeric[worst]:.8g}"
                )
            return False
    return True
