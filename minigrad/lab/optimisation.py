"""Optimisation experiments: optimisers' paths on 2-D landscapes, Adam's bias correction, and
learning rates from far too small to divergent."""

from __future__ import annotations

import math

import numpy as np

from ..train.callbacks import Callback
from .core import Result, digits, experiment, styled, tail_mean, train

# name: (f(x, y) on tensors or floats, start, minimum value, view box for the contour plot)
PROBLEMS = {
    "ravine": (lambda x, y: x * x / 100 + y * y, (-9.0, 2.0), 0.0, (-10, 2, -3, 3)),
    "rosenbrock": (lambda x, y: (1 - x) * (1 - x) + 100 * (y - x * x) * (y - x * x), (-1.2, 1.0), 0.0, (-2, 2, -1, 3)),
    "saddle": (lambda x, y: x * x + y**4 / 4 - y * y, (1.0, 1e-3), -1.0, (-1.5, 1.5, -2, 2)),
}
# optimiser: (preset name, learning rate on each problem). SGD, momentum and Nesterov share one
# rate per problem, so what momentum adds shows; the adaptive methods each have one tuned by hand.
OPTIMISERS = {
    "SGD": ("sgd", {"ravine": 0.3, "rosenbrock": 1e-3, "saddle": 0.05}),
    "momentum": ("momentum", {"ravine": 0.3, "rosenbrock": 1e-3, "saddle": 0.05}),
    "Nesterov": ("nesterov", {"ravine": 0.3, "rosenbrock": 1e-3, "saddle": 0.05}),
    "AdaGrad": ("adagrad", {"ravine": 2.0, "rosenbrock": 1.0, "saddle": 0.3}),
    "RMSProp": ("rmsprop", {"ravine": 0.1, "rosenbrock": 0.01, "saddle": 0.05}),
    "AdaDelta": ("adadelta", {"ravine": 2.0, "rosenbrock": 2.0, "saddle": 2.0}),
    "Adam": ("adam", {"ravine": 0.3, "rosenbrock": 0.3, "saddle": 0.1}),
}
TOLERANCE = 1e-3  # converged: f - f_min below this


def _descend(problem: str, optimiser: str, steps: int) -> tuple[list, int | None]:
    from minigrad import nn, optim

    f, start, minimum, _ = PROBLEMS[problem]
    preset, rates = OPTIMISERS[optimiser]
    point = nn.Parameter(np.array(start, dtype=np.float64))
    opt = optim.create(preset, [point], lr=rates[problem])
    path, converged = [tuple(start)], None
    for step in range(1, steps + 1):
        value = f(point[0], point[1])
        opt.zero_grad()
        value.backward()
        opt.step()
        x, y = (float(v) for v in point.data)
        path.append((x, y))
        if not (math.isfinite(x) and math.isfinite(y)) or max(abs(x), abs(y)) > 1e6:
            break  # diverged
        if converged is None and f(x, y) - minimum < TOLERANCE:
            converged = step
            break
    return path, converged


@experiment(
    "optimizers", "SGD, momentum, Nesterov, AdaGrad, RMSProp, AdaDelta, Adam on a ravine, Rosenbrock and a saddle"
)
def optimizers(quick: bool, seed: int) -> Result:
    steps = 600 if quick else 3000
    rows, paths = [], {}
    for problem, (f, _, minimum, _) in PROBLEMS.items():
        for name in OPTIMISERS:
            path, converged = _descend(problem, name, steps)
            paths[problem, name] = path
            final = f(*path[-1]) - minimum if all(map(math.isfinite, path[-1])) else math.inf
            rows.append((problem, name, converged if converged else "", final))
    found = {(r[0], r[1]): (r[2] if r[2] != "" else math.inf) for r in rows}
    ravine_momentum = min(found["ravine", "momentum"], found["ravine", "Nesterov"])
    saddle_slowest = max(("SGD", "momentum", "Nesterov", "RMSProp", "Adam"), key=lambda o: found["saddle", o])
    held = ravine_momentum < found["ravine", "SGD"] / 2 and saddle_slowest == "SGD"

    def steps_text(problem, name):
        value = found[problem, name]
        return f"{value}" if math.isfinite(value) else f"not within {steps}"

    def draw(new_figure):
        figure = new_figure(15, 4.6)
        for i, (problem, (f, start, minimum, box)) in enumerate(PROBLEMS.items()):
            axes = figure.add_subplot(1, 3, i + 1)
            xs, ys = np.meshgrid(np.linspace(box[0], box[1], 200), np.linspace(box[2], box[3], 200))
            levels = np.quantile(f(xs, ys) - minimum, np.linspace(0.01, 0.95, 14))
            axes.contour(xs, ys, f(xs, ys) - minimum, levels=np.unique(levels), colors="#bbbbbb", linewidths=0.7)
            for name in OPTIMISERS:
                path = np.array(paths[problem, name])
                axes.plot(path[:, 0], path[:, 1], lw=1.2, label=f"{name} ({steps_text(problem, name)})")
            axes.plot(*start, "ko", ms=4)
            axes.set_xlim(box[0], box[1])
            axes.set_ylim(box[2], box[3])
            styled(axes, f"{problem}: paths (steps to converge)", "x", "y")
        return figure

    return Result(
        name="optimizers",
        claim=(
            "In a ravine, momentum crosses to the minimum in far fewer steps than plain SGD, which "
            "zig-zags across the steep direction; near a saddle point plain SGD lingers longest."
        ),
        criterion=(
            "on the ravine, momentum or Nesterov converges (f - f* < 1e-3) in under half SGD's steps, and "
            "on the saddle SGD takes the most steps of SGD, momentum, Nesterov, RMSProp and Adam."
        ),
        held=held,
        setup=(
            f"Seven optimisers from the same start on f = x^2/100 + y^2 (a ravine), Rosenbrock's function and "
            f"f = x^2 + y^4/4 - y^2 (a saddle at the origin, minima at y = +-sqrt 2), at most {steps} "
            "steps. SGD, momentum (0.9) and Nesterov share one learning rate per problem; the adaptive "
            "methods have their own, tuned by hand."
        ),
        numbers=[
            f"{problem}: " + ", ".join(f"{name} {steps_text(problem, name)}" for name in OPTIMISERS)
            for problem in PROBLEMS
        ],
        columns=["problem", "optimizer", "steps_to_converge", "final_loss"],
        rows=rows,
        figures={"figure.png": draw},
    )


@experiment("adam-bias-correction", "Adam's first 50 steps with and without bias correction: step sizes and loss")
def adam_bias_correction(quick: bool, seed: int) -> Result:
    import minigrad as mg
    from minigrad import models, optim

    data = digits(seed)
    steps, lr = 50, 0.01
    rows, curves = [], {}
    for corrected in (True, False):
        mg.manual_seed(seed)
        model = models.mlp([64, 128, 10])
        opt = optim.Adam(model.parameters(), lr=lr, bias_correction=corrected)
        before = [p.data.copy() for p in model.parameters()]
        sizes = []

        def measure(step, model=model, before=before, sizes=sizes):
            # the largest change any single weight made, in units of lr
            sizes.append(max(float(np.abs(p.data - b).max()) for p, b in zip(model.parameters(), before)) / lr)
            for p, b in zip(model.parameters(), before):
                b[...] = p.data

        losses = train(model, opt, data["x_train"], data["y_train"], steps, 64, seed, after_step=measure)
        curves[corrected] = (losses, sizes)
        for step, (loss, size) in enumerate(zip(losses, sizes), start=1):
            rows.append(("on" if corrected else "off", step, loss, size))
    early_on = float(np.mean(curves[True][1][:10]))
    early_off = float(np.mean(curves[False][1][:10]))
    held = early_off > 2 * early_on

    def draw(new_figure):
        figure = new_figure(11, 4)
        for i, (what, index) in enumerate((("largest weight change per step / lr", 1), ("training loss", 0))):
            axes = figure.add_subplot(1, 2, i + 1)
            for corrected in (True, False):
                values = curves[corrected][index]
                label = "with bias correction" if corrected else "without (the first Adam)"
                axes.plot(range(1, len(values) + 1), values, label=label)
            styled(axes, what, "step", what.split(" per ")[0] if index else "cross-entropy")
        return figure

    return Result(
        name="adam-bias-correction",
        claim=(
            "Without bias correction Adam's first steps are oversized: m and v start at zero, and "
            "m / sqrt(v) is (1 - beta1) / sqrt(1 - beta2), about 3.2, times too large at step one."
        ),
        criterion="the mean largest per-weight step of the first 10 steps is more than twice as large without correction.",
        held=held,
        setup=(
            f"A 64-128-10 MLP on {data['source']}, Adam (lr {lr}, betas 0.9/0.999), batch 64, "
            f"{steps} steps from the same initial weights and batches, with and without bias correction."
        ),
        numbers=[
            f"mean largest step over steps 1-10: {early_on:.2f} lr with correction, {early_off:.2f} lr without "
            f"({early_off / early_on:.1f}x)",
            f"loss after {steps} steps: {tail_mean(curves[True][0], 5):.3f} with, {tail_mean(curves[False][0], 5):.3f} without",
        ],
        columns=["bias_correction", "step", "loss", "largest_step_over_lr"],
        rows=rows,
        figures={"figure.png": draw},
    )


class _RecordLosses(Callback):
    def __init__(self):
        self.losses = []

    def on_batch_end(self, trainer, step: int, logs: dict) -> None:
        self.losses.append(logs["loss"])


@experiment("lr-too-high", "loss curves for learning rates from far too small to divergent, and the NaN guard")
def lr_too_high(quick: bool, seed: int) -> Result:
    import minigrad as mg
    from minigrad import data as mgdata
    from minigrad import models, optim
    from minigrad.nn import functional as F
    from minigrad.train import TrainingDiverged, fit

    data = digits(seed)
    rates = [1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0]
    epochs = 3 if quick else 10
    rows, curves, guard = [], {}, ""
    for lr in rates:
        mg.manual_seed(seed)  # the same weights and batch order for every rate
        loader = mgdata.DataLoader(mgdata.TensorDataset(data["x_train"], data["y_train"]), batch_size=64, shuffle=True)
        model = models.mlp([64, 128, 128, 10])
        record = _RecordLosses()
        losses = record.losses
        try:
            fit(
                model,
                optim.SGD(model.parameters(), lr=lr),
                F.cross_entropy,
                loader,
                epochs=epochs,
                callbacks=[record],
                progress=False,
                metrics=(),
            )
        except TrainingDiverged as error:
            guard = guard or f"lr {lr:g}: {error}"
            losses.append(math.nan)
        curves[lr] = losses
        rows += [(lr, step, loss) for step, loss in enumerate(losses, start=1)]
    finals = {lr: tail_mean(curves[lr]) for lr in rates}
    best = min(rates, key=lambda lr: finals[lr])
    diverged = [lr for lr in rates if not math.isfinite(finals[lr])]
    held = finals[rates[0]] > 2 * finals[best] and rates[-1] in diverged and best not in (rates[0], rates[-1])

    def draw(new_figure):
        figure = new_figure(8, 4.5)
        axes = figure.add_subplot(1, 1, 1)
        for lr in rates:
            values = np.array(curves[lr], dtype=float)
            label = f"lr {lr:g}" + (" (diverged: NaN)" if lr in diverged else "")
            axes.plot(np.arange(1, len(values) + 1), np.where(np.isfinite(values), values, np.nan), label=label)
        axes.set_yscale("log")
        styled(axes, "training loss per step, learning rate from too small to divergent", "step", "cross-entropy (log)")
        return figure

    return Result(
        name="lr-too-high",
        claim=(
            "A learning rate far too small barely moves the loss, a good one brings it down fast, and "
            "one too large makes it explode to NaN, which the training loop's guard stops with a message."
        ),
        criterion=(
            "the smallest rate's final loss is over twice the best rate's, the best is neither extreme, "
            "and the largest rate ends in the NaN guard."
        ),
        held=held,
        setup=(
            f"A 64-128-128-10 MLP on {data['source']}, plain SGD, batch 64, {epochs} epochs through "
            f"minigrad.train.fit, learning rates {', '.join(f'{r:g}' for r in rates)}."
        ),
        numbers=[
            "final loss (mean of the last 10 steps): "
            + ", ".join(
                f"lr {lr:g} {finals[lr]:.3g}" if math.isfinite(finals[lr]) else f"lr {lr:g} diverged" for lr in rates
            ),
            f"the guard's message: {guard}" if guard else "no learning rate diverged",
        ],
        columns=["lr", "step", "loss"],
        rows=rows,
        figures={"figure.png": draw},
    )
