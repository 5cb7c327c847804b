"""Regularisation experiments: dropout as an ensemble, L1 against L2, early stopping, noise
injection, label smoothing and data augmentation."""

from __future__ import annotations

import numpy as np

from .. import models, nn, optim
from ..nn import functional as F
from ..nn import regularization
from .core import Result, accuracy, digits, experiment, probabilities, styled, train


def _few(data: dict, per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``per_class`` training samples of each class (fixed by ``seed``): scarce data, where
    regularisation matters. Returns the indices, inputs and labels."""
    rng = np.random.default_rng(seed + 1)
    y = data["y_train"]
    picks = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:per_class] for c in range(data["classes"])])
    return picks, data["x_train"][picks], y[picks]


@experiment("dropout-ensemble", "dropout at test time: weight scaling vs averaging many random masks vs no dropout")
def dropout_ensemble(quick: bool, seed: int) -> Result:
    import minigrad as mg

    data = digits(seed)
    _, x, y = _few(data, 30, seed)
    steps = 300 if quick else 1000
    nets = {}
    for p in (0.0, 0.5):
        mg.manual_seed(seed)
        nets[p] = models.mlp([64, 256, 256, 10], dropout=p)
        train(nets[p], optim.SGD(nets[p].parameters(), lr=0.02, momentum=0.9), x, y, steps, 32, seed)
    x_test, y_test = data["x_test"], data["y_test"]
    scaled = probabilities(nets[0.5], x_test)  # evaluation mode: every unit on, weights scaled by 1 - p
    mg.manual_seed(seed + 2)
    masks = np.stack([probabilities(nets[0.5], x_test, training=True) for _ in range(100)])
    counts = [1, 2, 5, 10, 20, 50, 100]
    rows = [("weight scaling", 0, float((scaled.argmax(1) == y_test).mean()))]
    rows.append(("no dropout", 0, accuracy(nets[0.0], x_test, y_test)))
    for k in counts:
        rows.append(("mask average", k, float((masks[:k].mean(0).argmax(1) == y_test).mean())))
    score = {(r[0], r[1]): r[2] for r in rows}
    agreement = float((scaled.argmax(1) == masks.mean(0).argmax(1)).mean())
    held = (
        abs(score["weight scaling", 0] - score["mask average", 100]) <= 0.015
        and score["mask average", 1] < score["mask average", 100]
    )

    def draw(new_figure):
        figure = new_figure(7.5, 4.4)
        axes = figure.add_subplot(1, 1, 1)
        axes.plot(counts, [score["mask average", k] for k in counts], "-o", label="average of k random masks")
        axes.axhline(score["weight scaling", 0], color="C1", label="weight scaling (one pass)")
        axes.axhline(score["no dropout", 0], color="C2", ls="--", label="trained without dropout")
        axes.set_xscale("log")
        styled(axes, "dropout net on the test split", "masks averaged (k)", "test accuracy")
        return figure

    return Result(
        name="dropout-ensemble",
        claim=(
            "A dropout net is an ensemble of the sub-networks its masks pick; scaling the weights by the "
            "keep probability at test time approximates averaging that ensemble in a single pass."
        ),
        criterion=(
            "weight scaling's test accuracy is within 1.5 points of the average over 100 masks, and one "
            "random mask alone scores lower than the 100-mask average."
        ),
        held=held,
        setup=(
            f"A 64-256-256-10 MLP with dropout 0.5 after each hidden layer, trained on 30 samples per class "
            f"of {data['source']} (SGD, momentum 0.9, lr 0.02, batch 32, {steps} steps), and the same net "
            "trained without dropout; predictions on the test split."
        ),
        numbers=[
            f"test accuracy: weight scaling {score['weight scaling', 0]:.3f}, average of 100 masks "
            f"{score['mask average', 100]:.3f}, one mask {score['mask average', 1]:.3f}, no dropout "
            f"{score['no dropout', 0]:.3f}",
            f"weight scaling and the 100-mask average predict the same class for {agreement:.1%} of test samples",
        ],
        columns=["inference", "masks", "test_accuracy"],
        rows=rows,
        figures={"figure.png": draw},
    )


@experiment("l1-vs-l2", "weight histograms and the fraction of near-zero weights under L1, L2 and elastic net")
def l1_vs_l2(quick: bool, seed: int) -> Result:
    import minigrad as mg

    data = digits(seed)
    steps = 300 if quick else 1000
    penalties = {
        "none": lambda model: 0.0,
        "L2": lambda model: regularization.l2_penalty(model) * 1e-2,
        "L1": lambda model: regularization.l1_penalty(model) * 2e-3,
        "elastic net": lambda model: regularization.elastic_net(model, l1=1e-3, l2=5e-3),
    }
    threshold = 1e-3
    rows, weights, scores = [], {}, {}
    for name, penalty in penalties.items():
        mg.manual_seed(seed)
        model = models.mlp([64, 128, 10])

        def loss_fn(output, target, model=model, penalty=penalty):
            return F.cross_entropy(output, target) + penalty(model)

        opt = optim.SGD(model.parameters(), lr=0.05)
        train(model, opt, data["x_train"], data["y_train"], steps, 64, seed, loss_fn=loss_fn)
        w = np.concatenate([p.data.reshape(-1) for p in regularization.penalised_parameters(model)])
        weights[name], scores[name] = w, accuracy(model, data["x_test"], data["y_test"])
        near_zero = float(np.mean(np.abs(w) < threshold))
        rows.append((name, near_zero, float(np.abs(w).mean()), scores[name]))
    zero = {r[0]: r[1] for r in rows}
    held = zero["L1"] > 5 * max(zero["L2"], 0.001) and zero["elastic net"] > zero["L2"]

    def draw(new_figure):
        figure = new_figure(14, 3.6)
        for i, name in enumerate(penalties):
            axes = figure.add_subplot(1, len(penalties), i + 1)
            axes.hist(weights[name], bins=np.linspace(-0.3, 0.3, 121), color=f"C{i}")
            axes.set_yscale("log")
            styled(axes, f"{name}: {zero[name]:.0%} below {threshold:g}", "weight", "count (log)", legend=False)
        return figure

    return Result(
        name="l1-vs-l2",
        claim=(
            "An L1 penalty drives many weights to (nearly) exactly zero, a sparse solution; L2 only shrinks "
            "them all towards zero; elastic net sits between."
        ),
        criterion=(
            f"the fraction of weights with |w| < {threshold:g} under L1 is more than five times L2's, and "
            "elastic net's exceeds L2's."
        ),
        held=held,
        setup=(
            f"A 64-128-10 MLP on {data['source']}, plain SGD (lr 0.05, batch 64, {steps} steps) on "
            "cross-entropy plus 2e-3 sum |w| (L1), 1e-2 x 1/2 sum w^2 (L2), or 1e-3 sum |w| + 5e-3 x 1/2 "
            "sum w^2 (elastic net), over the weights (not the biases)."
        ),
        numbers=[
            f"{name}: {zero[name]:.1%} of weights below {threshold:g}, mean |w| {r[2]:.4f}, test accuracy {scores[name]:.3f}"
            for name, r in zip(penalties, rows)
        ],
        columns=["penalty", "fraction_near_zero", "mean_abs_weight", "test_accuracy"],
        rows=rows,
        figures={"figure.png": draw},
    )


@experiment(
    "early-stopping",
    "an over-fitting model: train/validation curves, the epoch early stopping picks, test accuracy there vs at the end",
)
def early_stopping(quick: bool, seed: int) -> Result:
    import minigrad as mg
    from minigrad import data as mgdata
    from minigrad.train import EarlyStopping, fit

    data = digits(seed)
    _, x, y = _few(data, 20, seed)
    noisy = y.copy()
    flip = np.random.default_rng(seed).random(len(y)) < 0.2  # 20% wrong labels: something to memorise
    noisy[flip] = np.random.default_rng(seed + 1).integers(0, data["classes"], int(flip.sum()))
    epochs, patience = (40, 5) if quick else (150, 10)

    def run(callbacks):
        mg.manual_seed(seed)
        model = models.mlp([64, 512, 512, 10])
        train_loader = mgdata.DataLoader(mgdata.TensorDataset(x, noisy), batch_size=32, shuffle=True)
        val_loader = mgdata.DataLoader(mgdata.TensorDataset(data["x_val"], data["y_val"]), batch_size=512)
        history = fit(model, optim.Adam(model.parameters(), lr=1e-3), F.cross_entropy, train_loader, val_loader,
                      epochs=epochs, callbacks=callbacks, progress=False)  # fmt: skip
        return model, history

    stopper = EarlyStopping("val_loss", patience=patience, restore_best_weights=True)
    stopped_model, stopped = run([stopper])
    full_model, full = run([])
    best_epoch = int(stopped.best("val_loss")["epoch"])
    stop_test = accuracy(stopped_model, data["x_test"], data["y_test"])
    end_test = accuracy(full_model, data["x_test"], data["y_test"])
    rows = [
        (int(e), "train" if split == "train" else "validation", float(v))
        for split in ("train", "val")
        for e, v in zip(full["epoch"], full[f"{split}_loss"])
    ]
    rows += [(best_epoch, "test accuracy at the early-stopping epoch", stop_test)]
    rows += [(epochs, "test accuracy at the last epoch", end_test)]
    val = list(full["val_loss"])
    held = val[-1] > min(val) * 1.1 and stop_test >= end_test - 0.01

    def draw(new_figure):
        figure = new_figure(8, 4.4)
        axes = figure.add_subplot(1, 1, 1)
        axes.plot(full["epoch"], full["train_loss"], label="training loss (20% labels wrong)")
        axes.plot(full["epoch"], full["val_loss"], label="validation loss")
        axes.axvline(best_epoch, color="grey", ls="--", label=f"early stopping keeps epoch {best_epoch}")
        axes.set_yscale("log")
        styled(
            axes,
            f"test accuracy: {stop_test:.3f} at epoch {best_epoch}, {end_test:.3f} at epoch {epochs}",
            "epoch",
            "cross-entropy",
        )
        return figure

    return Result(
        name="early-stopping",
        claim=(
            "Once a model starts memorising its training set the validation loss turns up; stopping at the "
            "best validation epoch keeps the model that generalises best, at no extra cost."
        ),
        criterion=(
            "the validation loss at the last epoch is over 10% above its minimum (over-fitting happened), and "
            "the test accuracy of the early-stopped model is no more than 1 point below the last epoch's."
        ),
        held=held,
        setup=(
            f"A 64-512-512-10 MLP (Adam, lr 1e-3, batch 32) on 20 samples per class of {data['source']} with 20% "
            f"of their labels replaced at random; validation on {len(data['y_val'])} clean samples; EarlyStopping "
            f"(val_loss, patience {patience}, restoring the best weights) vs the same run for all {epochs} epochs."
        ),
        numbers=[
            f"lowest validation loss {min(val):.3f} at epoch {best_epoch}; {val[-1]:.3f} at epoch {epochs}; "
            f"early stopping ended training after epoch {len(stopped)}",
            f"test accuracy: {stop_test:.3f} early-stopped, {end_test:.3f} at the end",
        ],
        columns=["epoch", "measure", "value"],
        rows=rows,
        figures={"figure.png": draw},
    )


REPEATS = 3  # training runs (seeds) averaged where one run's luck could decide the verdict


def _train_and_test_over_runs(seed, build, fit, x, y, x_test, y_test, label, rows: list) -> tuple[float, float]:
    """REPEATS runs with seeds seed, seed + 1, ...: ``build()`` a model, ``fit(model, run_seed)``
    it, record (label, run, split, accuracy) rows; returns the mean train and test accuracy."""
    import minigrad as mg

    runs = []
    for run in range(REPEATS):
        mg.manual_seed(seed + run)
        model = build()
        fit(model, seed + run)
        runs.append((accuracy(model, x, y), accuracy(model, x_test, y_test)))
        rows += [(label, run, "train", runs[-1][0]), (label, run, "test", runs[-1][1])]
    return tuple(float(np.mean(v)) for v in zip(*runs))


@experiment("noise-injection", "Gaussian noise on the inputs during training: test accuracy with scarce data")
def noise_injection(quick: bool, seed: int) -> Result:

    data = digits(seed)
    _, x, y = _few(data, 10, seed)
    steps = 300 if quick else 800
    stds = [0.0, 0.5, 1.0, 1.5]
    rows, scores = [], {}
    for std in stds:

        def fit(model, run_seed):
            train(model, optim.SGD(model.parameters(), lr=0.02, momentum=0.9), x, y, steps, 32, run_seed)

        def build(std=std):
            return nn.Sequential(nn.GaussianNoise(std), *models.mlp([64, 256, 256, 10]))

        scores[std] = _train_and_test_over_runs(seed, build, fit, x, y, data["x_test"], data["y_test"], std, rows)
    best_noise = max(stds[1:], key=lambda s: scores[s][1])
    held = scores[best_noise][1] > scores[0.0][1]

    def draw(new_figure):
        figure = new_figure(7.5, 4.4)
        axes = figure.add_subplot(1, 1, 1)
        axes.plot(stds, [scores[s][0] for s in stds], "-o", label="training accuracy")
        axes.plot(stds, [scores[s][1] for s in stds], "-s", label="test accuracy")
        styled(
            axes,
            f"noise on the inputs while training (mean of {REPEATS} runs)",
            "noise std (inputs are z-scored)",
            "accuracy",
        )
        return figure

    return Result(
        name="noise-injection",
        claim=(
            "Adding noise to the inputs during training regularises: the network cannot memorise exact "
            "training points, so with scarce data it generalises better."
        ),
        criterion=f"some noise level beats no noise on test accuracy (mean of {REPEATS} training runs each).",
        held=held,
        setup=(
            f"A 64-256-256-10 MLP on 10 samples per class of {data['source']}, GaussianNoise(std) on the z-scored "
            f"inputs during training only; SGD with momentum, lr 0.02, batch 32, {steps} steps; {REPEATS} runs "
            "with different seeds per noise level."
        ),
        numbers=[f"noise std {s:g}: train {scores[s][0]:.3f}, test {scores[s][1]:.3f}" for s in stds],
        columns=["noise_std", "run", "split", "accuracy"],
        rows=rows,
        figures={"figure.png": draw},
    )


def _calibration(p: np.ndarray, y: np.ndarray, bins: int = 10) -> tuple[float, list]:
    """Expected calibration error: the mean |accuracy - confidence| over confidence bins,
    weighted by how many samples fall in each; and the bins (confidence, accuracy, count)."""
    confidence, correct = p.max(1), (p.argmax(1) == y)
    edges = np.linspace(0, 1, bins + 1)
    error, table = 0.0, []
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            gap = abs(correct[inside].mean() - confidence[inside].mean())
            error += gap * inside.mean()
            table.append((float(confidence[inside].mean()), float(correct[inside].mean()), int(inside.sum())))
    return float(error), table


@experiment("label-smoothing", "label smoothing and calibration: confidence against accuracy")
def label_smoothing(quick: bool, seed: int) -> Result:
    import minigrad as mg

    data = digits(seed)
    _, x, y = _few(data, 30, seed)
    steps = 400 if quick else 1500
    rows, results = [], {}
    for smoothing in (0.0, 0.1, 0.2):
        mg.manual_seed(seed)
        model = models.mlp([64, 256, 256, 10])

        def loss_fn(output, target, smoothing=smoothing):
            return F.cross_entropy(output, target, label_smoothing=smoothing)

        train(model, optim.SGD(model.parameters(), lr=0.05, momentum=0.9), x, y, steps, 32, seed, loss_fn=loss_fn)
        p = probabilities(model, data["x_test"])
        ece, table = _calibration(p, data["y_test"])
        results[smoothing] = (ece, float(p.max(1).mean()), float((p.argmax(1) == data["y_test"]).mean()), table)
        rows += [(smoothing, "expected_calibration_error", ece), (smoothing, "mean_confidence", results[smoothing][1])]
        rows += [(smoothing, "test_accuracy", results[smoothing][2])]
    held = results[0.1][0] < results[0.0][0]

    def draw(new_figure):
        figure = new_figure(7, 5)
        axes = figure.add_subplot(1, 1, 1)
        axes.plot([0, 1], [0, 1], color="grey", ls=":", label="perfect calibration")
        for smoothing, (ece, _, _, table) in results.items():
            axes.plot(
                [t[0] for t in table], [t[1] for t in table], "-o", label=f"smoothing {smoothing:g} (ECE {ece:.3f})"
            )
        styled(axes, "reliability diagram on the test split", "mean confidence in the bin", "accuracy in the bin")
        return figure

    return Result(
        name="label-smoothing",
        claim=(
            "Trained on one-hot targets a network grows over-confident (its confidence exceeds its accuracy); "
            "label smoothing keeps the confidence closer to the accuracy, a better-calibrated model."
        ),
        criterion="the expected calibration error (10 bins) on the test split is lower with smoothing 0.1 than without.",
        held=held,
        setup=(
            f"A 64-256-256-10 MLP on 30 samples per class of {data['source']}, SGD with momentum, lr 0.05, batch "
            f"32, {steps} steps, cross-entropy with label smoothing 0, 0.1 and 0.2."
        ),
        numbers=[
            f"smoothing {s:g}: ECE {r[0]:.3f}, mean confidence {r[1]:.3f}, test accuracy {r[2]:.3f}"
            for s, r in results.items()
        ],
        columns=["label_smoothing", "measure", "value"],
        rows=rows,
        figures={"figure.png": draw},
    )


@experiment("augmentation", "random shifts and rotations of scarce training images: test accuracy with and without")
def augmentation(quick: bool, seed: int) -> Result:
    from minigrad.data.transforms import RandomAffine

    data = digits(seed)
    picks, _, y = _few(data, 10, seed)
    raw = data["raw_train"][picks].reshape(-1, 1, 8, 8) / 16.0
    test = data["raw_test"].reshape(-1, 1, 8, 8) / 16.0
    steps = 300 if quick else 800
    jitter = RandomAffine(degrees=12, translate=(0.125, 0.125))
    rows, scores = [], {}

    def build():
        return nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(128, 10),
        )  # fmt: skip

    for augmented in (False, True):

        def fit(model, run_seed, augmented=augmented):
            opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
            train(model, opt, raw, y, steps, 32, run_seed, transform=jitter if augmented else None)

        name = "augmented" if augmented else "plain"
        scores[augmented] = _train_and_test_over_runs(seed, build, fit, raw, y, test, data["y_test"], name, rows)
    held = scores[True][1] > scores[False][1]

    def draw(new_figure):
        figure = new_figure(10, 3.2)
        examples = jitter(np.repeat(raw[:1], 5, axis=0), np.random.default_rng(seed))
        for i, image in enumerate([raw[0], *examples]):
            axes = figure.add_subplot(1, 7, i + 1)
            axes.imshow(image[0], cmap="gray_r")
            axes.set_xticks([])
            axes.set_yticks([])
            axes.set_title("original" if i == 0 else f"augmented {i}", fontsize=8)
        axes = figure.add_subplot(1, 7, 7)
        axes.bar(["plain", "augmented"], [scores[False][1], scores[True][1]], color=["C0", "C1"])
        axes.set_ylim(0, 1)
        axes.set_title("test accuracy", fontsize=8)
        return figure

    return Result(
        name="augmentation",
        claim=(
            "With few training images, random shifts and rotations (label-preserving changes) act as more "
            "data: the network generalises better."
        ),
        criterion=f"the augmented runs' mean test accuracy exceeds the plain runs' ({REPEATS} runs each).",
        held=held,
        setup=(
            f"A small CNN (conv 16 - pool - conv 32 - pool - linear) on 10 images per class of {data['source']}; "
            f"RandomAffine(rotation up to 12 degrees, shifts up to 1 pixel) on every training batch or none; "
            f"SGD with momentum, lr 0.05, batch 32, {steps} steps; {REPEATS} runs with different seeds each."
        ),
        numbers=[
            f"mean of {REPEATS} runs, plain: train {scores[False][0]:.3f}, test {scores[False][1]:.3f}; augmented: train "
            f"{scores[True][0]:.3f}, test {scores[True][1]:.3f}"
        ],
        columns=["training", "run", "split", "accuracy"],
        rows=rows,
        figures={"figure.png": draw},
    )
