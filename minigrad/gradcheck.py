"""Numerical gradient checking: the tape's gradients against central finite differences."""

from __future__ import annotations

import numpy as np

from .autograd import no_grad


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
        flat, nflat = x.data.reshape(-1), numeric.reshape(-1)
        for i in range(flat.size):
            saved = flat[i]
            flat[i] = saved + eps
            plus = objective()
            flat[i] = saved - eps
            minus = objective()
            flat[i] = saved
            nflat[i] = (plus - minus) / (2 * eps)
        if not np.allclose(analytic, numeric, atol=atol, rtol=rtol):
            if raise_exception:
                worst = np.unravel_index(np.abs(analytic - numeric).argmax(), x.shape)
                raise AssertionError(
                    f"gradcheck failed for input {index} of shape {x.shape}: at {worst} "
                    f"analytic {analytic[worst]:.8g} vs numeric {numeric[worst]:.8g}"
                )
            return False
    return True
