"""Pictures: one place that loads matplotlib (an optional extra) and writes PNGs atomically."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: matplotlib is optional
    from matplotlib.figure import Figure


def new_figure(who: str, width: float, height: float) -> Figure:
    """A matplotlib Figure (no display needed); ``who`` names the caller in the error that
    says how to install matplotlib when it is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(f"{who} needs matplotlib: pip install 'minigrad[plot]'") from None
    return Figure(figsize=(width, height), dpi=100)


def save_png(figure, path: str | os.PathLike) -> Path:
    """Writes the figure as a PNG in one atomic step: a reader never sees half a picture."""
    from .io import write_atomically

    figure.tight_layout()
    image = io.BytesIO()
    figure.savefig(image, format="png")
    write_atomically(path, [image.getvalue()])
    return Path(path)
