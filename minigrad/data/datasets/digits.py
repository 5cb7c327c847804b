"""scikit-learn's bundled handwritten digits: 1,797 real 8x8 grey images of 0-9, offline."""

from __future__ import annotations

import numpy as np

from ..dataset import TensorDataset
from ..transforms import Resize


def _load_sklearn_digits():
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ImportError(
            "the digits dataset comes with scikit-learn, which is not installed: "
            "pip install 'minigrad[datasets]' (or use the built-in Shapes dataset)"
        ) from None
    bunch = load_digits()
    return bunch.images, bunch.target


class Digits(TensorDataset):
    """The digits as images (N, 1, size, size) in [0, 1] (pixel counts 0..16 divided by 16).

    The split is stratified and fixed by ``split_seed``: ``test_fraction`` of each class goes
    to the test split (``train=False``), the rest to the training split. ``size`` > 8 upscales
    bilinearly (28 lets LeNet-5 take the images as it takes MNIST's).
    """

    classes = tuple(str(d) for d in range(10))

    def __init__(
        self,
        train: bool = True,
        size: int = 8,
        test_fraction: float = 0.2,
        split_seed: int = 0,
        transform=None,
        target_transform=None,
    ):
        if not 0 < test_fraction < 1:
            raise ValueError(f"Digits: test_fraction must be in (0, 1), got {test_fraction}")
        if int(size) != size or size < 1:
            raise ValueError(f"Digits: size must be a positive integer, got {size!r}")
        images, labels = _load_sklearn_digits()
        rng = np.random.default_rng(split_seed)
        test = np.zeros(len(labels), dtype=bool)
        for digit in range(10):
            members = rng.permutation(np.flatnonzero(labels == digit))
            test[members[: int(round(test_fraction * len(members)))]] = True
        keep = ~test if train else test
        x = (images[keep] / 16.0).astype(np.float32)[:, None]
        if size != 8:
            x = Resize(size)(x)
        super().__init__(x, labels[keep].astype(np.int64), transform=transform, target_transform=target_transform)
        self.train, self.size = train, int(size)
