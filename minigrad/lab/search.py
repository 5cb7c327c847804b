"""Searching and pre-training: random against grid search at the same budget, and greedy
layer-wise autoencoder pre-training when labels are few."""

from __future__ import annotations

import copy

import numpy as np

from .. import models, optim
from .core import Result, accuracy, digits, experiment, styled, train

LR_RANGE, DECAY_RANGE = (1e-3, 3.0), (0.0, 1e-4)  # the learning rate matters; this weight decay hardly does


def _trial(data: dict, lr: float, decay: float, seed: int, steps: int) -> float:
    import minigrad as mg

    mg.manual_seed(seed)
    model = models.mlp([64, 32, 10])
    opt = optim.SGD(model.parameters(), lr=lr, weight_decay=decay)
    train(model, opt, data["x_train"], data["y_train"], steps, 64, seed)
    return accuracy(model, data["x_val"], data["y_val"])


@experiment("hyperparameter-search", "random vs grid search at equal budget, two hyper-parameters of which one matters")
def hyperparameter_search(quick: bool, seed: int) -> Result:
    data = digits(seed)
    steps, repeats, side = (40, 4, 3) if quick else (80, 8, 3)
    budget = side * side
    lows, highs = np.log10(LR_RANGE[0]), np.log10(LR_RANGE[1])
    grid = [(10**a, d) for a in np.linspace(lows, highs, side) for d in np.linspace(*DECAY_RANGE, side)]
    rows, best = [], {"grid": [], "random": []}
    grid_scores = [_trial(data, lr, d, seed, steps) for lr, d in grid]
    rows += [("grid", 0, lr, d, s) for (lr, d), s in zip(grid, grid_scores)]
    best["grid"] = [max(grid_scores)] * repeats  # the grid is the same every time
    trials = {}
    for repeat in range(repeats):
        rng = np.random.default_rng(seed * 1000 + repeat)
        points = [(10 ** rng.uniform(lows, highs), rng.uniform(*DECAY_RANGE)) for _ in range(budget)]
        scores = [_trial(data, lr, d, seed, steps) for lr, d in points]
        trials[repeat] = list(zip(points, scores))
        rows += [("random", repeat + 1, lr, d, s) for (lr, d), s in zip(points, scores)]
        best["random"].append(max(scores))
    wins = sum(r >= g for r, g in zip(best["random"], best["grid"]))
    held = wins > repeats / 2 and float(np.mean(best["random"])) > best["grid"][0]

    def draw(new_figure):
        figure = new_figure(12, 4.4)
        axes = figure.add_subplot(1, 2, 1)
        axes.scatter([p[0] for p in grid], [p[1] for p in grid], c=grid_scores, vmin=0, vmax=1, marker="s", s=60,
                     label="grid (9 trials, 3 learning rates)")  # fmt: skip
        points, scores = zip(*trials[0])
        shown = axes.scatter([p[0] for p in points], [p[1] for p in points], c=scores, vmin=0, vmax=1, marker="o",
                             s=40, label="random (9 trials, 9 learning rates)")  # fmt: skip
        figure.colorbar(shown, ax=axes, label="validation accuracy")
        axes.set_xscale("log")
        styled(axes, "the trials of one repeat", "learning rate (matters)", "weight decay (hardly matters)")
        axes = figure.add_subplot(1, 2, 2)
        axes.plot(range(1, repeats + 1), best["random"], "o", label="random search: best of 9")
        axes.axhline(best["grid"][0], color="C1", label="grid search: best of 9")
        styled(axes, "best validation accuracy per repeat", "repeat (new random points)", "validation accuracy")
        return figure

    return Result(
        name="hyperparameter-search",
        claim=(
            "When only some hyper-parameters matter, random search beats grid search at the same budget: "
            "9 random trials try 9 values of the one that matters, a 3 x 3 grid only 3."
        ),
        criterion=(
            f"over {repeats} repeats with new random points, random search's best is at least the grid's best in "
            "most repeats, and better on average."
        ),
        held=held,
        setup=(
            f"A 64-32-10 MLP on {data['source']}, SGD for {steps} steps; learning rate log-uniform in "
            f"[{LR_RANGE[0]:g}, {LR_RANGE[1]:g}] (it matters) and weight decay in [0, {DECAY_RANGE[1]:g}] (it "
            f"hardly does); {budget} trials each: a {side} x {side} grid (log-spaced rates) or random points; "
            "the score is validation accuracy."
        ),
        numbers=[
            f"grid search's best: {best['grid'][0]:.3f}",
            f"random search's best per repeat: {', '.join(f'{b:.3f}' for b in best['random'])} (mean "
            f"{np.mean(best['random']):.3f}); at least the grid's in {wins} of {repeats}",
        ],
        columns=["method", "repeat", "lr", "weight_decay", "val_accuracy"],
        rows=rows,
        figures={"figure.png": draw},
    )


@experiment(
    "pretraining", "greedy layer-wise autoencoder pre-training vs random initialisation with few labels per class"
)
def pretraining(quick: bool, seed: int) -> Result:
    import minigrad as mg
    from minigrad.strategies import pretrain

    from .regularisation import REPEATS, _few

    data = digits(seed)
    per_class_options = [3, 10] if quick else [3, 10, 30]
    steps, epochs, sizes = 100, (8 if quick else 20), [64, 256, 256, 10]
    unlabelled = data["x_train"]  # every training image, labels unused
    starts = {}  # (run, pre-trained) -> the initial weights both arms fine-tune from
    for run in range(REPEATS):
        mg.manual_seed(seed + run)
        model = models.mlp(sizes)
        starts[run, False] = copy.deepcopy(model.state_dict())  # the state dict shares the weights' memory
        pretrain.layerwise(model, unlabelled, epochs=epochs, noise=0.5)
        starts[run, True] = copy.deepcopy(model.state_dict())
    rows, scores = [], {}
    for per_class in per_class_options:
        _, x, y = _few(data, per_class, seed)
        for pretrained in (False, True):
            runs = []
            for run in range(REPEATS):
                mg.manual_seed(seed + run)
                model = models.mlp(sizes)
                model.load_state_dict(starts[run, pretrained])
                opt = optim.Adam(model.parameters(), lr=3e-4)  # gently: keep what pre-training found
                train(model, opt, x, y, steps, min(32, len(x)), seed + run)
                runs.append(accuracy(model, data["x_test"], data["y_test"]))
                rows.append((per_class, "pre-trained" if pretrained else "random", run, runs[-1]))
            scores[per_class, pretrained] = float(np.mean(runs))
    fewest = per_class_options[0]
    held = scores[fewest, True] > scores[fewest, False]
    gains = {k: scores[k, True] - scores[k, False] for k in per_class_options}

    def draw(new_figure):
        figure = new_figure(7.5, 4.4)
        axes = figure.add_subplot(1, 1, 1)
        for pretrained, style in ((False, "-o"), (True, "-s")):
            label = "greedy autoencoder pre-training, then fine-tuning" if pretrained else "random initialisation"
            axes.plot(per_class_options, [scores[k, pretrained] for k in per_class_options], style, label=label)
        axes.set_xscale("log")
        styled(axes, f"test accuracy (mean of {REPEATS} runs)", "labelled samples per class", "test accuracy")
        return figure

    return Result(
        name="pretraining",
        claim=(
            "With plenty of unlabelled data and few labels, initialising a network from greedily trained "
            "(denoising) autoencoders beats a random start; the advantage shrinks as labels grow."
        ),
        criterion=f"with {fewest} labels per class the pre-trained network's mean test accuracy ({REPEATS} runs) is higher.",
        held=held,
        setup=(
            f"A 64-256-256-10 ReLU MLP on {data['source']}. Pre-training: minigrad.strategies.pretrain.layerwise on "
            f"all {len(unlabelled)} training images without labels (denoising autoencoders, noise 0.5 std, Adam, "
            f"{epochs} epochs per layer). Then the pre-trained and the randomly initialised net fine-tune on "
            f"{per_class_options} labelled samples per class (Adam, lr 3e-4, {steps} steps); {REPEATS} runs each."
        ),
        numbers=[
            f"{k} labels per class: random {scores[k, False]:.3f}, pre-trained {scores[k, True]:.3f} "
            f"({'+' if gains[k] >= 0 else ''}{100 * gains[k]:.1f} points)"
            for k in per_class_options
        ],
        columns=["labels_per_class", "initialisation", "run", "test_accuracy"],
        rows=rows,
        figures={"figure.png": draw},
    )
