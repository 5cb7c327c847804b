"""Learning dynamics layer by layer, and the lectures' alarms when they go wrong.

``watch(model, every=N)`` samples one training step in N: for every weight layer and
activation it records the activations' mean and standard deviation, the fraction exactly zero
(dead ReLUs) and the fraction saturated (tanh within 0.01 of +-1, sigmoid within 0.01 of 0 or
1), each layer's gradient norm, and the update-to-weight ratio ||w_after - w_before|| / ||w_before||
that the optimiser's step made (rule of thumb: about 1e-3). It reads them through the public
hooks (module forward hooks, tensor gradient hooks); it never changes what it watches.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

import numpy as np

from ..autograd import is_grad_enabled
from ..dtypes import array_of
from ..train.callbacks import Callback

# How close to its bounds an activation counts as saturated, per activation module.
_SATURATED = {
    "Tanh": lambda y: np.abs(y) > 0.99,
    "Sigmoid": lambda y: (y < 0.01) | (y > 0.99),
}
_ACTIVATIONS = ("ReLU", "LeakyReLU", "Tanh", "Sigmoid")
_SAMPLE = 4096  # values kept per layer for the histograms

_FIXES = {
    "dead_relu": (
        "{value:.0%} of {layer}'s ReLU outputs are exactly zero: those units are dead and pass no gradient. "
        "Lower the learning rate, initialise with He (Kaiming) scaling, start biases slightly positive, "
        "or use LeakyReLU; batch normalisation before the ReLU also keeps units alive."
    ),
    "saturation": (
        "{value:.0%} of {layer}'s outputs sit within 0.01 of their bounds: saturated units have a "
        "derivative near zero and stop learning. Initialise with Xavier scaling (std sqrt(1/fan_in)) "
        "instead of N(0, 1), standardise the inputs, or add batch normalisation; ReLU does not saturate."
    ),
    "vanishing_gradient": (
        "the gradient reaching {layer} is {value:.1e} times the last layer's: the early layers hardly "
        "learn. Use ReLU rather than sigmoid/tanh, He or Xavier initialisation, batch normalisation, "
        "or skip connections (ResNet)."
    ),
    "exploding_gradient": (
        "the gradient reaching {layer} is {value:.1e} times the last layer's: updates there are out of "
        "scale. Lower the learning rate, clip gradients (optim.clip_grad_norm_), add batch "
        "normalisation, or initialise with smaller weights."
    ),
    "update_ratio_high": (
        "each step changes {layer}'s weights by {value:.1e} of their size (rule of thumb: about 1e-3): "
        "the learning rate is probably too high; lower it (or warm it up)."
    ),
    "update_ratio_low": (
        "each step changes {layer}'s weights by only {value:.1e} of their size (rule of thumb: about "
        "1e-3): the learning rate is probably too low; raise it, or the layer is frozen by mistake."
    ),
}


@dataclasses.dataclass
class Alert:
    """A problem the watch saw: ``kind`` (dead_relu, saturation, vanishing_gradient,
    exploding_gradient, update_ratio), the ``layer`` (module path), the measured ``value``, the
    step it was first seen at, how many sampled steps showed it, and the fix in ``message``."""

    kind: str
    layer: str
    value: float
    step: int
    message: str
    count: int = 1

    def __str__(self) -> str:
        seen = f"step {self.step}" + (f", {self.count} samples" if self.count > 1 else "")
        return f"[{self.kind}] {self.layer} ({seen}): {self.message}"


@dataclasses.dataclass
class LayerStats:
    """One layer at one sampled step. Gradient and update figures are None for layers without
    trainable parameters; ``saturated_fraction`` is None for activations that cannot saturate."""

    layer: str
    kind: str
    mean: float
    std: float
    zero_fraction: float
    saturated_fraction: float | None
    applies_relu: bool
    grad_norm: float | None = None
    weight_norm: float | None = None
    update_ratio: float | None = None
    has_matrix: bool = False  # a 2-D or larger weight (Linear, Conv): the layers compared for gradient flow


class Watch(Callback):
    """What :func:`watch` returns. ``history``: (step, [LayerStats]) per sampled step;
    ``alerts``: one :class:`Alert` per (kind, layer); ``report()``, ``table()``, ``plot(path)``;
    ``close()`` (or leaving a ``with`` block) removes its hooks. Also a training callback:
    ``fit(..., callbacks=[inspect.watch(model)])`` closes each sample right after the optimiser step."""

    def __init__(
        self,
        model,
        every: int = 20,
        *,
        dead_fraction: float = 0.9,
        saturated_fraction: float = 0.5,
        gradient_ratio: float = 1e3,
        update_band: tuple = (1e-5, 1e-1),
    ):
        from ..nn import Module

        if not isinstance(model, Module):
            raise TypeError(f"watch: expected a minigrad Module, got {type(model).__name__}")
        if (
            not isinstance(every, (int, float, np.integer))
            or not math.isfinite(every)
            or int(every) != every
            or every < 1
        ):
            raise ValueError(f"watch: every must be a positive whole number of steps, got {every!r}")
        if not (0 < dead_fraction <= 1 and 0 < saturated_fraction <= 1):
            raise ValueError(
                f"watch: dead_fraction and saturated_fraction are fractions in (0, 1], got "
                f"{dead_fraction!r} and {saturated_fraction!r}"
            )
        low, high = update_band
        if not (gradient_ratio > 1 and 0 < low < high):
            raise ValueError(
                f"watch: need gradient_ratio > 1 and update_band (low, high) with 0 < low < high, got "
                f"{gradient_ratio!r} and {update_band!r}"
            )
        super().__init__()
        self.model, self.every = model, int(every)
        self.dead_fraction, self.saturated_fraction = dead_fraction, saturated_fraction
        self.gradient_ratio, self.update_band = gradient_ratio, (low, high)
        self.layers = {
            module: path
            for path, module in model.named_modules()
            if not any(True for _ in module.children())
            and (any(True for _ in module.parameters()) or type(module).__name__ in _ACTIVATIONS)
        }
        if not self.layers:
            raise ValueError(f"watch: {type(model).__name__} has no weight layers or activations to watch")
        self.history: list = []
        self.samples: dict = {}  # layer -> (activation sample, gradient sample) of the last sampled step
        self._alerts: dict = {}
        self._forwards, self._armed = 0, False
        self._handles = [model.register_forward_pre_hook(self._on_model_forward)]
        self._handles += [m.register_forward_hook(self._on_layer_forward, with_kwargs=True) for m in self.layers]
        self._grad_hooks, self._histogrammed = [], {}
        for module, path in self.layers.items():
            trained = [p for p in module.parameters() if p.requires_grad]
            # the gradient drawn in the histograms: the weight matrix, else the first parameter
            self._histogrammed[path] = next((p for p in trained if p.ndim >= 2), trained[0] if trained else None)
            for p in module.parameters():
                if p.requires_grad:
                    hook = self._gradient_hook(path, p)
                    p.register_hook(hook)
                    self._grad_hooks.append((p, hook))

    # ---- sampling, through the hooks
    def _on_model_forward(self, module, args) -> None:
        if not (module.training and is_grad_enabled()):  # evaluation passes are not training steps
            return
        self._finish()
        self._forwards += 1
        if (self._forwards - 1) % self.every == 0:
            self._armed = True
            self._stats, self._grad_sq = {}, {}
            self._before = {path: [p.data.copy() for p in m.parameters()] for m, path in self.layers.items()}

    def _on_layer_forward(self, module, args, kwargs, output) -> None:
        if not self._armed or module not in self.layers:
            return
        path, kind = self.layers[module], type(module).__name__
        y = np.asarray(array_of(output), dtype=np.float64)
        saturated = _SATURATED.get(kind)
        self._stats[path] = LayerStats(
            layer=path,
            kind=kind,
            mean=float(y.mean()),
            std=float(y.std()),
            zero_fraction=float(np.count_nonzero(y == 0) / max(y.size, 1)),
            saturated_fraction=float(saturated(y).mean()) if saturated else None,
            applies_relu=kind == "ReLU" or bool(kwargs.get("relu")),
        )
        self.samples[path] = (y.reshape(-1)[:: max(1, y.size // _SAMPLE)].copy(), None)

    def _gradient_hook(self, path: str, parameter):
        def hook(grad):
            if self._armed:
                g = np.asarray(grad.data, dtype=np.float64)
                self._grad_sq[path] = self._grad_sq.get(path, 0.0) + float(np.sum(g * g))
                if parameter is self._histogrammed[path]:
                    activations = self.samples.get(path, (None, None))[0]
                    self.samples[path] = (activations, g.reshape(-1)[:: max(1, g.size // _SAMPLE)].copy())
            return None

        return hook

    def _finish(self) -> None:
        """Closes the sampled step: weights changed by the optimiser since it began give the
        update ratios; then the alarms are checked."""
        if not self._armed:
            return
        self._armed = False
        changed = False
        for module, path in self.layers.items():
            stats = self._stats.get(path)
            params = list(module.parameters())
            if stats is None or not params or path not in self._grad_sq:
                continue
            before = self._before[path]
            weight = math.sqrt(sum(float(np.sum(np.square(b, dtype=np.float64))) for b in before))
            delta = math.sqrt(
                sum(float(np.sum(np.square(p.data - b, dtype=np.float64))) for p, b in zip(params, before))
            )
            changed |= delta > 0
            stats.grad_norm = math.sqrt(self._grad_sq[path])
            stats.weight_norm = weight
            stats.update_ratio = delta / weight if weight > 0 else None
            stats.has_matrix = any(p.ndim >= 2 for p in params)
        if not changed:  # no optimiser step since the sample began: no update to measure
            for stats in self._stats.values():
                stats.update_ratio = None
        rows = list(self._stats.values())  # in the order the forward ran them
        self.history.append((self._forwards, rows))
        self._check(self._forwards, rows)

    # ---- the alarms
    def _raise(self, kind: str, layer: str, value: float, step: int, fix: str | None = None) -> None:
        key = (kind, layer)
        message = _FIXES[fix or kind].format(layer=layer, value=value)
        if key in self._alerts:
            alert = self._alerts[key]
            alert.value, alert.message, alert.count = value, message, alert.count + 1
        else:
            self._alerts[key] = Alert(kind, layer, value, step, message)

    def _check(self, step: int, rows: list) -> None:
        for s in rows:
            if s.applies_relu and s.zero_fraction > self.dead_fraction:
                self._raise("dead_relu", s.layer, s.zero_fraction, step)
            if s.saturated_fraction is not None and s.saturated_fraction > self.saturated_fraction:
                self._raise("saturation", s.layer, s.saturated_fraction, step)
            if s.has_matrix and s.update_ratio is not None:
                low, high = self.update_band
                if s.update_ratio > high:
                    self._raise("update_ratio", s.layer, s.update_ratio, step, "update_ratio_high")
                elif s.update_ratio < low:
                    self._raise("update_ratio", s.layer, s.update_ratio, step, "update_ratio_low")
        flowing = [s for s in rows if s.has_matrix and s.grad_norm is not None]
        for s in flowing:
            if not math.isfinite(s.grad_norm):
                self._raise("exploding_gradient", s.layer, s.grad_norm, step)
        if len(flowing) >= 2 and all(math.isfinite(s.grad_norm) for s in flowing):
            first, last = flowing[0], flowing[-1]
            ratio = first.grad_norm / last.grad_norm if last.grad_norm > 0 else math.inf
            if ratio < 1 / self.gradient_ratio:
                self._raise("vanishing_gradient", first.layer, ratio, step)
            elif ratio > self.gradient_ratio:
                self._raise("exploding_gradient", first.layer, ratio, step)

    @property
    def alerts(self) -> list:
        self._finish()
        return list(self._alerts.values())

    # ---- reading it
    def table(self) -> str:
        """The last sampled step, one row per layer in forward order."""
        self._finish()
        if not self.history:
            return "no training step sampled yet"
        step, rows = self.history[-1]

        def number(value, form):
            return f"{value:{form}}" if value is not None else "-"

        lines = [
            f"step {step}",
            f"{'layer':<22}{'kind':<12}{'mean':>9}{'std':>9}{'zero':>7}{'sat':>7}{'grad norm':>11}{'update':>10}",
        ]
        for s in rows:
            sat = f"{s.saturated_fraction:.0%}" if s.saturated_fraction is not None else "-"
            lines.append(
                f"{s.layer[:21]:<22}{s.kind[:11]:<12}{s.mean:>9.3f}{s.std:>9.3f}{s.zero_fraction:>7.0%}{sat:>7}"
                f"{number(s.grad_norm, '.2e'):>11}{number(s.update_ratio, '.1e'):>10}"
            )
        return "\n".join(lines)

    def report(self) -> str:
        """Prints (and returns) the statistics table and the alerts with their fixes."""
        alerts = self.alerts
        text = self.table() + "\n\n" + ("\n".join(map(str, alerts)) if alerts else "no alerts")
        print(text)
        return text

    def plot(self, path: str | os.PathLike) -> Path:
        """Histograms of each layer's activations and weight gradients at the last sampled step,
        one row per layer, to a PNG (needs matplotlib)."""
        from ..figures import new_figure, save_png

        self._finish()
        rows = [(layer, *self.samples[layer]) for layer in self.samples]
        if not rows:
            raise ValueError("Watch.plot: no training step sampled yet")
        figure = new_figure("Watch.plot", 9, 1.7 * len(rows) + 0.6)
        for i, (layer, activations, gradients) in enumerate(rows):
            for j, (values, what) in enumerate(((activations, "activations"), (gradients, "gradients"))):
                axes = figure.add_subplot(len(rows), 2, 2 * i + j + 1)
                finite = values[np.isfinite(values)] if values is not None else None
                if finite is not None and finite.size:
                    axes.hist(finite, bins=60, color="#4878d0" if j == 0 else "#ee854a")
                else:
                    axes.axis("off")
                    why = "no parameters" if values is None else "no finite values"
                    axes.text(0.5, 0.5, why, ha="center", va="center", transform=axes.transAxes, fontsize=8)
                axes.set_title(f"{layer}: {what}", fontsize=8)
                axes.tick_params(labelsize=7)
        return save_png(figure, path)

    # ---- lifetime
    def close(self) -> None:
        """Closes a sample in progress and removes every hook; the statistics stay readable."""
        self._finish()
        for handle in self._handles:
            handle.remove()
        for p, hook in self._grad_hooks:
            if hook in p._hooks:
                p._hooks.remove(hook)
        self._handles, self._grad_hooks = [], []

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *exc) -> bool:
        self.close()
        return False

    # ---- as a training callback: a sampled step ends when the optimiser has stepped
    def on_batch_end(self, trainer, step: int, logs: dict) -> None:
        self._finish()

    def on_train_end(self, trainer) -> None:
        self._finish()


def watch(model, every: int = 20, **thresholds) -> Watch:
    """Starts watching ``model``'s training: one step in ``every`` is sampled (the first one
    included). ``thresholds``: ``dead_fraction`` (0.9), ``saturated_fraction`` (0.5),
    ``gradient_ratio`` (1e3: first weight layer's gradient norm over the last one's, either way),
    ``update_band`` ((1e-5, 1e-1) around the rule of thumb 1e-3)."""
    return Watch(model, every, **thresholds)
