"""Normalisation experiments: batch norm and the learning rate, the four feature normalisations
as the batch shrinks, and normalising the input data."""

from __future__ import annotations

import math

import numpy as np

from .. import models, nn, optim
from .core import Result, accuracy, digits, experiment, mean_loss, styled, tail_mean, train


@experiment("batchnorm-lr", "the same net with and without batch norm over a range of learning rates: final loss")
def batchnorm_lr(quick: bool, seed: int) -> Result:
    import minigrad as mg

    data = digits(seed)
    rates = [0.01, 0.03, 0.1, 0.3, 1.0, 3.0]
    steps = 100 if quick else 400
    rows, finals, curves = [], {}, {}
    for batch_norm in (False, True):
        for lr in rates:
            mg.manual_seed(seed)
            model = models.mlp([64, 128, 128, 128, 10], batchnorm=batch_norm)
            curve = train(
                model, optim.SGD(model.parameters(), lr=lr), data["x_train"], data["y_train"], steps, 64, seed
            )
            final = mean_loss(model, data["x_train"], data["y_train"]) if math.isfinite(curve[-1]) else math.inf
            finals[batch_norm, lr] = final if math.isfinite(final) else math.inf
            curves[batch_norm, lr] = curve
            rows.append((batch_norm, lr, finals[batch_norm, lr]))
    start = math.log(10)  # chance level: what a net that learned nothing scores

    def diverged(batch_norm, lr):
        return not finals[batch_norm, lr] < start

    rescued = [lr for lr in rates if diverged(False, lr) and finals[True, lr] < 0.5]
    held = bool(rescued)

    def draw(new_figure):
        figure = new_figure(7.5, 4.4)
        axes = figure.add_subplot(1, 1, 1)
        for batch_norm, style in ((False, "-o"), (True, "-s")):
            values = [min(finals[batch_norm, lr], 20.0) for lr in rates]
            axes.plot(rates, values, style, label="with batch norm" if batch_norm else "without")
        axes.axhline(start, color="grey", ls=":", label="chance (log 10); above: diverged")
        axes.set_xscale("log")
        axes.set_yscale("log")
        styled(axes, f"training loss after {steps} SGD steps", "learning rate", "cross-entropy (capped at 20)")
        return figure

    def text(bn, lr):
        return f"{finals[bn, lr]:.3g}" if not diverged(bn, lr) else "diverged"

    return Result(
        name="batchnorm-lr",
        claim="Batch normalisation lets a network train at learning rates where the same network without it diverges.",
        criterion=(
            "at some learning rate the plain net ends at or above chance loss (log 10) or non-finite, "
            "while the batch-norm net ends below 0.5."
        ),
        held=held,
        setup=(
            f"A 64-128-128-128-10 ReLU MLP on {data['source']}, with or without BatchNorm1d after each hidden "
            f"Linear, plain SGD, batch 64, {steps} steps, learning rates {', '.join(f'{r:g}' for r in rates)}; "
            "the loss measured on the whole training set."
        ),
        numbers=[
            f"{'with' if bn else 'without'} batch norm: " + ", ".join(f"lr {lr:g} {text(bn, lr)}" for lr in rates)
            for bn in (False, True)
        ]
        + [f"learning rates only batch norm survives: {', '.join(f'{r:g}' for r in rescued) or 'none'}"],
        columns=["batch_norm", "lr", "final_loss"],
        rows=rows,
        figures={"figure.png": draw},
    )


NORMS = ("batch", "layer", "instance", "group")


def _norm(kind: str, channels: int, spatial: bool):
    """The four normalisations over a feature map (N, C, H, W) or, without instance norm, a
    feature vector (N, C): group norm in groups of 4 channels (feature maps) or 16 features."""
    if not spatial:
        return {"batch": nn.BatchNorm1d, "layer": nn.LayerNorm, "group": lambda c: nn.GroupNorm(c // 16, c)}[kind](
            channels
        )
    return {
        "batch": lambda: nn.BatchNorm2d(channels),
        "layer": lambda: nn.GroupNorm(1, channels),
        "instance": lambda: nn.InstanceNorm2d(channels, affine=True),
        "group": lambda: nn.GroupNorm(channels // 4, channels),
    }[kind]()


def _network(model: str, kind: str):
    if model == "mlp":
        return nn.Sequential(
            nn.Linear(64, 64), _norm(kind, 64, False), nn.ReLU(),
            nn.Linear(64, 64), _norm(kind, 64, False), nn.ReLU(),
            nn.Linear(64, 10),
        )  # fmt: skip
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), _norm(kind, 16, True), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1, stride=2), _norm(kind, 32, True), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10),
    )  # fmt: skip


@experiment("norms-batch-size", "batch, layer, instance and group norm: test accuracy as the batch size shrinks to 2")
def norms_batch_size(quick: bool, seed: int) -> Result:
    import minigrad as mg

    data = digits(seed)
    inputs = {"mlp": (data["x_train"], data["x_test"])}
    inputs["cnn"] = tuple(x.reshape(-1, 1, 8, 8) for x in inputs["mlp"])
    sizes = [32, 8, 2]
    samples = 2000 if quick else 8000  # the same number of training samples seen at every batch size
    rows, scores = [], {}
    for model in ("mlp", "cnn"):
        for kind in NORMS if model == "cnn" else ("batch", "layer", "group"):
            for batch in sizes:
                mg.manual_seed(seed)
                net = _network(model, kind)
                lr = 0.05 * math.sqrt(batch / 32)  # smaller batches, noisier steps: the usual square-root scaling
                opt = optim.SGD(net.parameters(), lr=lr, momentum=0.9)
                train(net, opt, inputs[model][0], data["y_train"], samples // batch, batch, seed)
                scores[model, kind, batch] = accuracy(net, inputs[model][1], data["y_test"])
                rows.append((model, kind, batch, scores[model, kind, batch]))
    small = sizes[-1]
    bn_drop = scores["mlp", "batch", sizes[0]] - scores["mlp", "batch", small]
    gn_drop = scores["mlp", "group", sizes[0]] - scores["mlp", "group", small]
    held = bn_drop > gn_drop + 0.05 and scores["mlp", "group", small] > scores["mlp", "batch", small]

    def draw(new_figure):
        figure = new_figure(12, 4.4)
        for i, model in enumerate(("mlp", "cnn")):
            axes = figure.add_subplot(1, 2, i + 1)
            for j, kind in enumerate(NORMS):
                if (model, kind, small) in scores:
                    values = [scores[model, kind, b] for b in sizes]
                    axes.plot(sizes, values, "-o", color=f"C{j}", label=f"{kind} norm")
            axes.set_xscale("log", base=2)
            axes.invert_xaxis()
            title = "MLP: normalising 64 features" if model == "mlp" else "CNN: normalising 8x8 and 4x4 maps"
            styled(axes, f"{title}", "batch size (same samples seen)", "test accuracy")
        return figure

    return Result(
        name="norms-batch-size",
        claim=(
            "Batch norm's statistics come from the batch, so it degrades as the batch shrinks to a few "
            "samples; layer, instance and group norm compute theirs per sample and hold up."
        ),
        criterion=(
            f"in the MLP, batch norm loses over 5 points more test accuracy than group norm from batch "
            f"{sizes[0]} to batch {small}, and group norm beats it at batch {small}."
        ),
        held=held,
        setup=(
            f"{data['source']}. An MLP (64-64-64-10, the norm after each hidden Linear; batch, layer and "
            "group norm: instance norm needs a feature map) and a CNN (conv 16 - norm - ReLU - conv 32 "
            "stride 2 - norm - ReLU - global average pool - linear; all four). SGD with momentum 0.9, "
            f"lr 0.05 x sqrt(batch/32), {samples} training samples seen at every batch size {sizes}; "
            "test accuracy in evaluation mode (batch norm uses its running statistics)."
        ),
        numbers=[
            f"{model.upper()}, {kind} norm, test accuracy by batch size: "
            + ", ".join(f"{b}: {scores[model, kind, b]:.3f}" for b in sizes)
            for model in ("mlp", "cnn")
            for kind in NORMS
            if (model, kind, small) in scores
        ]
        + [
            "the CNN's batch norm holds up better: each channel's statistics pool the batch over every "
            "pixel (2 x 64 values at batch 2), where the MLP's come from 2 values per feature."
        ],
        columns=["model", "norm", "batch_size", "test_accuracy"],
        rows=rows,
        figures={"figure.png": draw},
    )


@experiment("data-normalisation", "raw pixels vs z-score vs min-max scaled inputs: how fast training converges")
def data_normalisation(quick: bool, seed: int) -> Result:
    import minigrad as mg

    data = digits(seed)
    raw = data["raw_train"].astype(np.float32)
    low, high = raw.min(0), raw.max(0)
    inputs = {
        "raw": raw,
        "min-max": (raw - low) / np.maximum(high - low, 1e-6),
        "z-score": data["x_train"],
    }
    rates = [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0]
    steps = 150 if quick else 400
    rows, finals, curves = [], {}, {}
    for name, x in inputs.items():
        for lr in rates:
            mg.manual_seed(seed)
            model = models.mlp([64, 64, 10])
            curves[name, lr] = train(model, optim.SGD(model.parameters(), lr=lr), x, data["y_train"], steps, 64, seed)
            finals[name, lr] = tail_mean(curves[name, lr], 20)
            rows.append((name, lr, finals[name, lr]))
    best = {name: min(rates, key=lambda lr, name=name: finals[name, lr]) for name in inputs}
    held = finals["z-score", best["z-score"]] < min(finals[n, best[n]] for n in ("raw", "min-max"))

    def draw(new_figure):
        figure = new_figure(12, 4.4)
        axes = figure.add_subplot(1, 2, 1)
        for name in inputs:
            axes.plot(rates, [min(finals[name, lr], 10.0) for lr in rates], "-o", label=f"{name} inputs")
        axes.set_xscale("log")
        axes.set_yscale("log")
        styled(axes, f"final training loss after {steps} steps", "learning rate", "cross-entropy (capped at 10)")
        axes = figure.add_subplot(1, 2, 2)
        for name in inputs:
            values = np.array(curves[name, best[name]], dtype=float)
            smooth = np.convolve(values, np.ones(10) / 10, mode="valid")
            axes.plot(smooth, label=f"{name}, best lr {best[name]:g}")
        axes.set_yscale("log")
        styled(axes, "each at its best learning rate (10-step mean)", "step", "cross-entropy")
        return figure

    return Result(
        name="data-normalisation",
        claim=(
            "Inputs on uneven or large scales make gradient descent slow, since one learning rate cannot "
            "suit every direction; z-scored inputs converge fastest."
        ),
        criterion="at each one's best learning rate, the z-scored run ends with the lowest loss (mean of its last 20 steps).",
        held=held,
        setup=(
            f"A 64-64-10 ReLU MLP on {data['source']}: raw pixel values (0..16), min-max scaled to [0, 1] per "
            f"pixel, or z-scored per pixel (training statistics); plain SGD, batch 64, {steps} steps, "
            f"learning rates {', '.join(f'{r:g}' for r in rates)}."
        ),
        numbers=[
            f"{name}: best lr {best[name]:g}, final loss {finals[name, best[name]]:.3g}; trains (loss below 1) "
            f"at lr {min(lr for lr in rates if finals[name, lr] < 1.0):g} to {max(lr for lr in rates if finals[name, lr] < 1.0):g}"
            if any(finals[name, lr] < 1.0 for lr in rates)
            else f"{name}: no learning rate got below loss 1"
            for name in inputs
        ],
        columns=["inputs", "lr", "final_loss"],
        rows=rows,
        figures={"figure.png": draw},
    )
