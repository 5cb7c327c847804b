"""The tape's gradients of a learner's own model or Function against float64 finite differences."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np

from ..autograd import no_grad
from ..dtypes import array_of
from ..gradcheck import central_difference
from ..tensor import Tensor


@dataclasses.dataclass
class GradientCheck:
    """Per checked tensor: the largest relative error over the sampled entries and where."""

    name: str
    max_relative_error: float
    worst_index: tuple
    analytic: float
    numeric: float
    verdict: str

    def __str__(self) -> str:
        return (
            f"{self.name}: max relative error {self.max_relative_error:.2e} at {self.worst_index} "
            f"(tape {self.analytic:.6g}, finite differences {self.numeric:.6g}): {self.verdict}"
        )


def _verdict(error: float) -> str:
    """The course notes' guide for relative errors in float64."""
    if error < 1e-7:
        return "fine"
    if error < 1e-4:
        return "fine for kinks (ReLU, max) but look again if there are none"
    if error < 1e-2:
        return "suspicious"
    return "probably wrong"


def check_gradients(model_or_fn, inputs, eps: float = 1e-6, samples: int = 20, seed: int = 0) -> list[GradientCheck]:
    """The tape's gradients against centred finite differences (f(x + eps) - f(x - eps)) / 2 eps,
    in float64, on up to ``samples`` random entries of each parameter of a Module (its float64
    copy: the model is left as it was) or of each input that requires grad of a function. The
    objective is sum(output * w) for a fixed random w, so every output entry counts. Returns one
    :class:`GradientCheck` per tensor, worst first; relative error |a - n| / max(|a|, |n|, 1e-12)."""
    from ..nn import Module

    inputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    wide = [
        Tensor(np.asarray(array_of(x), dtype=np.float64), requires_grad=getattr(x, "requires_grad", False))
        for x in inputs
    ]
    if isinstance(model_or_fn, Module):
        model = copy.deepcopy(model_or_fn).to(np.float64)
        checked = list(model.named_parameters())

        def run():
            return model(*wide)
    else:
        checked = [(f"input {i}", x) for i, x in enumerate(wide) if x.requires_grad]

        def run():
            return model_or_fn(*wide)

    if not checked:
        raise ValueError("check_gradients: nothing requires grad (pass a Module, or inputs with requires_grad=True)")
    out = run()
    weights = Tensor(np.random.default_rng(seed).standard_normal(out.shape))
    for _, t in checked:
        t.grad = None
    (out * weights).sum().backward()

    def objective() -> float:
        with no_grad():
            return float((run().data * weights.data).sum())

    rng = np.random.default_rng(seed)
    results = []
    for name, t in checked:
        analytic = np.zeros(t.shape) if t.grad is None else t.grad.data
        picks = rng.choice(t.data.size, size=min(samples, t.data.size), replace=False)
        worst = (-1.0, 0, 0.0, 0.0)
        for flat_index in picks:
            numeric = central_difference(objective, t.data, int(flat_index), eps)
            a = float(analytic.reshape(-1)[flat_index])
            error = abs(a - numeric) / max(abs(a), abs(numeric), 1e-12)
            if error > worst[0]:
                worst = (error, int(flat_index), a, numeric)
        error, flat_index, a, numeric = worst
        results.append(
            GradientCheck(
                name, error, tuple(int(i) for i in np.unravel_index(flat_index, t.shape)), a, numeric, _verdict(error)
            )
        )
    return sorted(results, key=lambda r: -r.max_relative_error)
