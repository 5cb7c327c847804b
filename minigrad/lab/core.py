"""What every lab experiment shares: the result it returns (table, claim, verdict, figures), how
that is written to a folder, the registry behind ``minigrad lab``, and the small data and
training helpers the experiments are built from."""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import math
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

EXPERIMENTS: dict = {}  # name -> (one-line description, function(quick, seed) -> Result)


def experiment(name: str, description: str) -> Callable:
    """Registers ``function(quick: bool, seed: int) -> Result`` as the experiment ``name``."""

    def register(function):
        EXPERIMENTS[name] = (description, function)
        return function

    return register


@dataclasses.dataclass
class Result:
    """One experiment's outcome. ``columns``/``rows``: the long-form table (one row per measured
    value); ``claim``: the lecture's claim in one sentence; ``criterion``: how ``held`` was
    decided; ``numbers``: the headline measurements as sentences; ``figures``: file name ->
    function drawing it on a matplotlib Figure it is given a factory for."""

    name: str
    claim: str
    criterion: str
    held: bool
    setup: str
    numbers: list
    columns: list
    rows: list
    figures: dict = dataclasses.field(default_factory=dict)

    @property
    def table(self) -> list[dict]:
        return [dict(zip(self.columns, row)) for row in self.rows]

    @property
    def verdict(self) -> str:
        return "held" if self.held else "did not hold"

    def summary(self) -> str:
        """The summary.md text: setup, claim, numbers, verdict and the criterion behind it."""
        lines = [
            f"# {self.name}",
            "",
            f"**The lecture's claim.** {self.claim}",
            "",
            f"**Setup.** {self.setup}",
            "",
            "**Measured.**",
            "",
            *[f"- {number}" for number in self.numbers],
            "",
            f"**Verdict: the claim {self.verdict} this time.** Criterion: {self.criterion}",
            "",
        ]
        return "\n".join(lines)

    def write(self, out: str | os.PathLike) -> list[Path]:
        """Writes results.csv, summary.md and the figures (PNG, needs matplotlib) into ``out``,
        each file atomically; returns their paths."""
        from ..figures import new_figure, save_png
        from ..io import write_atomically

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        text = io.StringIO(newline="")
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(self.columns)
        writer.writerows([_csv_value(v) for v in row] for row in self.rows)
        write_atomically(out / "results.csv", [text.getvalue().encode()])
        write_atomically(out / "summary.md", [self.summary().encode()])
        written = [out / "results.csv", out / "summary.md"]
        for filename, draw in self.figures.items():
            figure = draw(functools.partial(new_figure, f"minigrad lab {self.name}"))
            written.append(save_png(figure, out / filename))
        return written


def _csv_value(value):
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    return value


# ---------------------------------------------------------------------------------- data
@functools.lru_cache(maxsize=4)
def digits(seed: int = 0) -> dict:
    """The 8x8 handwritten digits (scikit-learn's bundled copy; the generated Shapes set when
    scikit-learn is missing), split 60/20/20 into train/validation/test, z-scored with the
    training part's per-pixel statistics, flattened to 64 features; ``raw_*``: the pixels as
    stored (digits: counts 0..16)."""
    from ..data.datasets import Digits, Shapes

    try:
        parts = [Digits(train=True).arrays, Digits(train=False).arrays]
        images = 16.0 * np.concatenate([p[0] for p in parts])  # the original pixel counts, 0..16
        labels = np.concatenate([p[1] for p in parts])
        source = "the 1,797 8x8 handwritten digits bundled with scikit-learn"
    except ImportError:
        images, labels = Shapes(n=1800, size=8, seed=seed).arrays[:2]
        source = "1,800 generated 8x8 Shapes images (scikit-learn is not installed)"
    order = np.random.default_rng(seed).permutation(len(images))
    x = images[order].reshape(len(images), -1).astype(np.float32)
    y = labels[order].astype(np.int64)
    n_train, n_val = int(0.6 * len(x)), int(0.2 * len(x))
    parts = {"train": slice(0, n_train), "val": slice(n_train, n_train + n_val), "test": slice(n_train + n_val, None)}
    mean, std = x[parts["train"]].mean(0), x[parts["train"]].std(0) + 1e-3
    data = {"source": source, "classes": int(y.max()) + 1}
    for part, rows in parts.items():
        data[f"x_{part}"] = (x[rows] - mean) / std
        data[f"raw_{part}"] = x[rows]
        data[f"y_{part}"] = y[rows]
    return data


# ------------------------------------------------------------------------------ training
def train(
    model, optimizer, x, y, steps: int, batch: int, seed: int, loss_fn=None, after_step=None, transform=None
) -> list:
    """Mini-batch training for ``steps`` steps on random batches (seeded); returns the loss of
    each step. A non-finite loss ends training there (it is recorded, the step is not taken).
    ``loss_fn(output, target)`` defaults to cross-entropy; ``after_step(step)`` runs after each;
    ``transform(batch, rng)`` (augmentation) changes each input batch before it is used."""
    import minigrad as mg
    from minigrad.nn import functional as F

    loss_fn = loss_fn or F.cross_entropy
    rng = np.random.default_rng(seed)
    losses = []
    model.train()
    for step in range(steps):
        pick = rng.choice(len(x), size=min(batch, len(x)), replace=False)
        inputs = x[pick] if transform is None else transform(x[pick], rng)
        loss = loss_fn(model(mg.tensor(inputs)), mg.tensor(y[pick]))
        value = float(loss.item())
        losses.append(value)
        if not math.isfinite(value):
            break
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if after_step is not None:
            after_step(step)
    return losses


def probabilities(model, x, training: bool = False) -> np.ndarray:
    """Softmax outputs on ``x`` without recording (``training=True`` keeps dropout on)."""
    import minigrad as mg

    model.train(training)
    with mg.no_grad():
        logits = model(mg.tensor(x)).data.astype(np.float64)
    model.train()
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def accuracy(model, x, y) -> float:
    return float((probabilities(model, x).argmax(1) == y).mean())


def mean_loss(model, x, y) -> float:
    """Cross-entropy on the whole of ``x`` in evaluation mode."""
    p = probabilities(model, x)
    return float(-np.log(np.maximum(p[np.arange(len(y)), y], 1e-12)).mean())


def tail_mean(values: list, count: int = 10) -> float:
    """The mean of the last ``count`` values: a final loss less noisy than the last batch's."""
    tail = values[-count:]
    return float(np.mean(tail)) if tail and all(math.isfinite(v) for v in tail) else math.inf


def styled(axes, title: str, xlabel: str, ylabel: str, legend: bool = True) -> None:
    axes.set_title(title, fontsize=10)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.grid(alpha=0.3)
    if legend:
        axes.legend(fontsize=8)
