"""``History``: one row of numbers per epoch (losses, metrics, learning rate, time)."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import TYPE_CHECKING

from ..figures import new_figure, save_png
from ..io import write_atomically

if TYPE_CHECKING:  # annotations only
    import os
    from collections.abc import Iterable


class History:
    """Per-epoch records, e.g. ``{"epoch": 3, "train_loss": 0.21, "train_accuracy": 0.94,
    "val_loss": 0.25, "val_accuracy": 0.93, "lr": 0.001, "time": 1.7}``.

    ``history["val_loss"]`` is that column as a list (None where an epoch lacks it).
    """

    def __init__(self, rows: Iterable[dict] | None = None):
        self.rows: list[dict] = [dict(r) for r in rows or []]

    def append(self, row: dict) -> None:
        self.rows.append(dict(row))

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key: str) -> list:
        if not any(key in row for row in self.rows):
            raise KeyError(f"History has no column {key!r}; columns: {', '.join(self.columns)}")
        return [row.get(key) for row in self.rows]

    @property
    def columns(self) -> list[str]:
        names: list[str] = []
        for row in self.rows:
            names += [k for k in row if k not in names]
        return names

    def best(self, monitor: str, mode: str = "min") -> dict:
        """The row where ``monitor`` was lowest (``mode="min"``) or highest."""
        rows = [r for r in self.rows if r.get(monitor) is not None and not math.isnan(r[monitor])]
        if not rows:
            raise KeyError(f"History has no values of {monitor!r}")
        return (min if mode == "min" else max)(rows, key=lambda r: r[monitor])

    def to_csv(self, path: str | os.PathLike) -> Path:
        """Writes the table atomically (header row, one line per epoch)."""
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, fieldnames=self.columns)
        writer.writeheader()
        writer.writerows(self.rows)
        write_atomically(path, [text.getvalue().encode()])
        return Path(path)

    @classmethod
    def from_csv(cls, path: str | os.PathLike) -> History:
        with open(path, newline="") as f:
            return cls([{k: _number(v) for k, v in row.items()} for row in csv.DictReader(f)])

    def state_dict(self) -> dict:
        return {"rows": [dict(r) for r in self.rows]}

    def load_state_dict(self, state: dict) -> History:
        self.rows = [dict(r) for r in state["rows"]]
        return self

    def plot(self, path: str | os.PathLike) -> Path:
        """Writes learning curves to a PNG: loss and accuracy per epoch, training vs validation,
        so over-fitting shows as the validation curve turning away from the training one.
        Needs matplotlib (``pip install 'minigrad[plot]'``)."""
        epochs = self["epoch"] if "epoch" in self.columns else list(range(1, len(self) + 1))
        panels = [
            name for name in ("loss", "accuracy") if f"train_{name}" in self.columns or f"val_{name}" in self.columns
        ]
        figure = new_figure("History.plot", 5 * max(len(panels), 1), 3.6)
        for i, name in enumerate(panels):
            axes = figure.add_subplot(1, len(panels), i + 1)
            for split, style in (("train", "-o"), ("val", "-s")):
                column = f"{split}_{name}"
                if column in self.columns:
                    points = [(e, v) for e, v in zip(epochs, self[column]) if v is not None]
                    axes.plot(
                        [p[0] for p in points],
                        [p[1] for p in points],
                        style,
                        markersize=3,
                        label="training" if split == "train" else "validation",
                    )
            axes.set_xlabel("epoch")
            axes.set_ylabel(name)
            axes.grid(alpha=0.3)
            axes.legend()
        return save_png(figure, path)

    def __repr__(self):
        return f"History({len(self)} epochs, columns {self.columns})"


def _number(text: str):
    if text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value
