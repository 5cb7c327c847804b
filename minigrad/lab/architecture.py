"""Initialisation and depth: activations through a 10-layer net under each initialisation, and
plain networks that train worse as they deepen while residual ones do not."""

from __future__ import annotations

import math

import numpy as np

from .. import nn
from ..tensor import Tensor
from .core import Result, digits, experiment, mean_loss, styled, train

# name -> standard deviation of the weights for a (fan_in, fan_out) layer
INITS = {
    "N(0, 0.01^2)": lambda fan_in, fan_out: 0.01,
    "N(0, 1)": lambda fan_in, fan_out: 1.0,
    "Xavier": lambda fan_in, fan_out: math.sqrt(2.0 / (fan_in + fan_out)),
    "He 4/(in+out)": lambda fan_in, fan_out: math.sqrt(4.0 / (fan_in + fan_out)),
    "He 2/fan_in": lambda fan_in, fan_out: math.sqrt(2.0 / fan_in),
}
LAYERS, WIDTH = 10, 500


def _saturated(activation: str, y: np.ndarray) -> float:
    """tanh: |y| > 0.99 (the flat tails); ReLU: y == 0 (its flat side)."""
    return float(np.mean(np.abs(y) > 0.99) if activation == "tanh" else np.mean(y == 0))


def _forward_stats(activation: str, init: str, batch_norm: bool, x: np.ndarray, seed: int) -> list:
    import minigrad as mg

    mg.manual_seed(seed)
    rng = np.random.default_rng(seed)
    act = nn.Tanh() if activation == "tanh" else nn.ReLU()
    h, layers = mg.tensor(x), []
    with mg.no_grad():
        for _ in range(LAYERS):
            linear = nn.Linear(WIDTH, WIDTH, bias=False)
            linear.weight.data[...] = rng.standard_normal((WIDTH, WIDTH)).astype(np.float32) * INITS[init](WIDTH, WIDTH)
            h = linear(h)
            if batch_norm:
                h = nn.BatchNorm1d(WIDTH)(h)  # training mode: the batch's own statistics
            h = act(h)
            y = h.data.astype(np.float64)
            layers.append((float(y.mean()), float(y.std()), _saturated(activation, y), y.reshape(-1)[::97].copy()))
    return layers


@experiment(
    "init",
    "activations of a 10-layer tanh and ReLU net (width 500) under each initialisation, with and without batch norm",
)
def init(quick: bool, seed: int) -> Result:
    x = np.random.default_rng(seed).standard_normal((200 if quick else 1000, WIDTH)).astype(np.float32)
    stats, rows = {}, []
    for activation in ("tanh", "relu"):
        for name in INITS:
            for batch_norm in (False, True):
                layers = _forward_stats(activation, name, batch_norm, x, seed)
                stats[activation, name, batch_norm] = layers
                rows += [
                    (activation, name, batch_norm, i, mean, std, saturated)
                    for i, (mean, std, saturated, _) in enumerate(layers, start=1)
                ]

    def ratio(activation, name, batch_norm=False):
        layers = stats[activation, name, batch_norm]
        return layers[-1][1] / layers[0][1]

    small, xavier = ratio("tanh", "N(0, 0.01^2)"), ratio("tanh", "Xavier")
    saturated_large = stats["tanh", "N(0, 1)", False][-1][2]
    he_relu, xavier_relu = ratio("relu", "He 2/fan_in"), ratio("relu", "Xavier")
    with_bn = [ratio(a, n, True) for a in ("tanh", "relu") for n in INITS]
    held = (
        small < 0.01
        and 0.1 < xavier < 10
        and saturated_large > 0.5
        and 0.1 < he_relu < 10
        and xavier_relu < he_relu
        and all(0.1 < r < 10 for r in with_bn)
    )

    def draw_std(new_figure):
        figure = new_figure(12, 4.4)
        for i, activation in enumerate(("tanh", "relu")):
            axes = figure.add_subplot(1, 2, i + 1)
            for j, name in enumerate(INITS):
                colour = f"C{j}"
                for batch_norm, style in ((False, "-o"), (True, "--")):
                    stds = [s[1] for s in stats[activation, name, batch_norm]]
                    label = f"{name}{' + batch norm' if batch_norm else ''}"
                    axes.plot(range(1, LAYERS + 1), stds, style, color=colour, ms=3, label=label)
            axes.set_yscale("log")
            styled(axes, f"{activation}: activation std per layer", "layer", "std of activations (log)")
        return figure

    def draw_histograms(activation):
        def draw(new_figure):
            figure = new_figure(16, 8)
            for r, name in enumerate(INITS):
                for c, (_, _, _, sample) in enumerate(stats[activation, name, False]):
                    axes = figure.add_subplot(len(INITS), LAYERS, r * LAYERS + c + 1)
                    axes.hist(sample, bins=40, color=f"C{r}")
                    axes.tick_params(labelsize=5)
                    axes.set_yticks([])
                    if r == 0:
                        axes.set_title(f"layer {c + 1}", fontsize=8)
                    if c == 0:
                        axes.set_ylabel(name, fontsize=7)
            figure.suptitle(f"{activation} net without batch norm: activation histograms per layer and initialisation")
            return figure

        return draw

    return Result(
        name="init",
        claim=(
            "Too small initial weights make a deep tanh net's activations shrink to zero layer by layer, "
            "N(0, 1) saturates it, Xavier keeps the spread; ReLU needs He's larger scale; batch norm "
            "keeps every initialisation's activations in range."
        ),
        criterion=(
            "tanh layer-10 std below 1% of layer 1's under N(0, 0.01^2) and within 10x under Xavier; over half "
            "the tanh units saturated at layer 10 under N(0, 1); ReLU layer-10 std within 10x of layer 1's under "
            "He (fan_in) and lower under Xavier; with batch norm every ratio within 10x."
        ),
        held=held,
        setup=(
            f"{LAYERS} Linear layers of width {WIDTH} (no bias), each followed by tanh or ReLU (and, in the "
            f"batch-norm runs, BatchNorm1d before the activation), on {len(x)} N(0, 1) input vectors; forward only. "
            "The layers are square, so He's two variants (4/(in+out) and 2/fan_in) give the same scale here."
        ),
        numbers=[
            f"tanh, layer-10 std / layer-1 std: N(0, 0.01^2) {small:.2g}, Xavier {xavier:.2g}, N(0, 1) "
            f"{ratio('tanh', 'N(0, 1)'):.2g} with {saturated_large:.0%} of units saturated",
            f"ReLU, the same ratio: He 2/fan_in {he_relu:.2g}, He 4/(in+out) {ratio('relu', 'He 4/(in+out)'):.2g}, "
            f"Xavier {xavier_relu:.2g}, N(0, 0.01^2) {ratio('relu', 'N(0, 0.01^2)'):.2g}",
            f"with batch norm the ratios range from {min(with_bn):.2g} to {max(with_bn):.2g}",
        ],
        columns=["activation", "init", "batch_norm", "layer", "mean", "std", "fraction_saturated"],
        rows=rows,
        figures={
            "figure.png": draw_std,
            "histograms-tanh.png": draw_histograms("tanh"),
            "histograms-relu.png": draw_histograms("relu"),
        },
    )


class Block(nn.Module):
    """Linear-BatchNorm-ReLU-Linear-BatchNorm, then ReLU; ``residual`` adds the input back before
    the last ReLU (a ResNet basic block, fully connected)."""

    def __init__(self, width: int, residual: bool):
        super().__init__()
        self.residual = residual
        self.fc1, self.bn1 = nn.Linear(width, width), nn.BatchNorm1d(width)
        self.fc2, self.bn2 = nn.Linear(width, width), nn.BatchNorm1d(width)

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn2(self.fc2(self.bn1(self.fc1(x), relu=True)))
        return (out + x).relu() if self.residual else out.relu()


def _deep_net(blocks: int, residual: bool, width: int = 32):
    return nn.Sequential(
        nn.Linear(64, width), nn.ReLU(), *[Block(width, residual) for _ in range(blocks)], nn.Linear(width, 10)
    )


@experiment("degradation", "plain vs residual networks of increasing depth: training loss after a fixed budget")
def degradation(quick: bool, seed: int) -> Result:
    import minigrad as mg
    from minigrad import optim

    data = digits(seed)
    depths = [1, 4, 12] if quick else [1, 4, 12, 24]
    steps = 150 if quick else 500
    rows, losses = [], {}
    for residual in (False, True):
        for blocks in depths:
            mg.manual_seed(seed)
            model = _deep_net(blocks, residual)
            opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
            curve = train(model, opt, data["x_train"], data["y_train"], steps, 64, seed)
            final = mean_loss(model, data["x_train"], data["y_train"])
            losses[residual, blocks] = (final, curve)
            rows.append(("residual" if residual else "plain", 2 * blocks + 2, final))
    deepest, shallowest = depths[-1], depths[0]
    plain_worse = losses[False, deepest][0] > losses[False, shallowest][0]
    residual_fine = losses[True, deepest][0] < losses[False, deepest][0]
    held = plain_worse and residual_fine

    def draw(new_figure):
        figure = new_figure(11, 4.2)
        axes = figure.add_subplot(1, 2, 1)
        for residual, style in ((False, "-o"), (True, "-s")):
            axes.plot(
                [2 * b + 2 for b in depths],
                [losses[residual, b][0] for b in depths],
                style,
                label="residual" if residual else "plain",
            )
        axes.set_yscale("log")
        styled(axes, f"training loss after {steps} steps", "layers with weights", "cross-entropy on the training set")
        axes = figure.add_subplot(1, 2, 2)
        for residual, style in ((False, "-"), (True, "--")):
            for b in (shallowest, deepest):
                curve = np.array(losses[residual, b][1])
                smooth = np.convolve(curve, np.ones(10) / 10, mode="valid")
                axes.plot(smooth, style, label=f"{'residual' if residual else 'plain'}, {2 * b + 2} layers")
        axes.set_yscale("log")
        styled(axes, "training loss while training (10-step mean)", "step", "cross-entropy")
        return figure

    return Result(
        name="degradation",
        claim=(
            "Past some depth a plain network trains worse than a shallower one (degradation, not "
            "over-fitting: the training loss itself is higher), while the residual version of the same "
            "depth does not suffer."
        ),
        criterion=(
            "after the same budget the deepest plain net's training loss exceeds the shallowest plain net's, "
            "and the deepest residual net's is below the deepest plain net's."
        ),
        held=held,
        setup=(
            f"Fully connected nets of width 32 on {data['source']}: a stem, then 1 to {deepest} blocks of "
            "Linear-BatchNorm-ReLU-Linear-BatchNorm(-plus input)-ReLU, then the classifier; SGD with momentum "
            f"0.9, lr 0.05, batch 64, {steps} steps; the training loss measured on the whole training set."
        ),
        numbers=[
            f"{kind} nets, training loss by layers: "
            + ", ".join(f"{2 * b + 2}: {losses[residual, b][0]:.3g}" for b in depths)
            for kind, residual in (("plain", False), ("residual", True))
        ],
        columns=["network", "layers", "train_loss"],
        rows=rows,
        figures={"figure.png": draw},
    )
