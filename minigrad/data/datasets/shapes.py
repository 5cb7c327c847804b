"""A procedurally generated image-classification set that needs nothing installed."""

from __future__ import annotations

import numpy as np

from ..dataset import TensorDataset


class Shapes(TensorDataset):
    """``n`` grey ``size`` x ``size`` images of five shapes — disk, ring, square, triangle,
    plus — at random positions and sizes, with Gaussian pixel noise of std ``noise``.

    Samples are a pure function of (``seed``, ``train``): the training and test splits are
    drawn from independent streams, so they never share an image.
    """

    classes = ("disk", "ring", "square", "triangle", "plus")

    def __init__(
        self,
        n: int = 2000,
        size: int = 28,
        train: bool = True,
        noise: float = 0.1,
        seed: int = 0,
        transform=None,
        target_transform=None,
    ):
        if int(n) != n or n < 1 or int(size) != size or size < 8:
            raise ValueError(f"Shapes: need n >= 1 and size >= 8, got n={n!r}, size={size!r}")
        if noise < 0:
            raise ValueError(f"Shapes: noise must be non-negative, got {noise}")
        rng = np.random.default_rng([seed, int(train)])
        labels = rng.integers(0, len(self.classes), n)
        radius = rng.uniform(0.2, 0.35, (n, 1, 1)) * size
        cy, cx = (rng.uniform(-0.1, 0.1, (2, n, 1, 1)) + 0.5) * (size - 1)
        yy, xx = np.mgrid[:size, :size].astype(np.float64)
        dy, dx = yy - cy, xx - cx
        distance = np.hypot(dy, dx)
        arm = radius / 3.5  # half-width of the plus's arms and of the ring
        masks = np.stack(
            [
                distance <= radius,  # disk
                np.abs(distance - radius * 0.8) <= arm,  # ring
                np.maximum(np.abs(dy), np.abs(dx)) <= radius * 0.8,  # square
                (dy <= radius * 0.7) & (np.abs(dx) <= (dy + radius) * 0.55),  # triangle, apex up
                ((np.abs(dx) <= arm) | (np.abs(dy) <= arm)) & (np.maximum(np.abs(dx), np.abs(dy)) <= radius),  # plus
            ]
        )
        image = masks[labels, np.arange(n)].astype(np.float32)
        image += noise * rng.standard_normal(image.shape, dtype=np.float32)
        super().__init__(
            np.clip(image, 0, 1)[:, None],
            labels.astype(np.int64),
            transform=transform,
            target_transform=target_transform,
        )
        self.train = train
