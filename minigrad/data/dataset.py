"""Datasets: indexable collections of samples, and ways to split them.

A dataset answers ``len(ds)`` and ``ds[i]``. Datasets held in memory as arrays also answer
``ds.__getitems__(indices)`` with a whole batch at once (one fancy-index per array instead of
one Python call per sample); :class:`~minigrad.data.DataLoader` uses it when present.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..random import generator
from ..tensor import Tensor
from .transforms import Transform

if TYPE_CHECKING:  # annotations only
    from numpy.typing import ArrayLike

if TYPE_CHECKING:  # transforms imports this module
    from .transforms import Standardize


class Dataset:
    """Base class: subclasses define ``__len__`` and ``__getitem__(index) -> sample``.
    A sample is usually a tuple ``(input, target)``."""

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must define __len__")

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")


def _as_numpy(array) -> np.ndarray:
    return array.data if isinstance(array, Tensor) else np.asarray(array)


class TensorDataset(Dataset):
    """Samples are rows of equally long arrays: ``ds[i] == (arrays[0][i], arrays[1][i], ...)``.

    Accepts numpy arrays or Tensors (stored as numpy arrays, without a copy). ``transform`` and
    ``target_transform`` (keywords, as torchvision's datasets take them) are applied to the
    first and second field of every sample on the way out: a ``minigrad.data.transforms``
    transform to a whole batch at once, any other callable sample by sample.
    """

    def __init__(self, *arrays: ArrayLike | Tensor, transform=None, target_transform=None):
        if not arrays:
            raise ValueError("TensorDataset needs at least one array")
        self.arrays = tuple(_as_numpy(a) for a in arrays)
        self.transform, self.target_transform = transform, target_transform
        lengths = [len(a) for a in self.arrays]
        if len(set(lengths)) != 1:
            raise ValueError(f"TensorDataset: arrays differ in length (first dimensions {lengths})")

    def __len__(self) -> int:
        return len(self.arrays[0])

    def _transformed(self, fields: tuple, batch: bool) -> tuple:
        fields = list(fields)
        for i, fn in ((0, self.transform), (1, self.target_transform)):
            if fn is None or i >= len(fields):
                continue
            if isinstance(fn, Transform):  # batch-wise: a single sample goes as a batch of one
                fields[i] = _as_numpy(fn(fields[i] if batch else np.asarray(fields[i])[None]))
                fields[i] = fields[i] if batch else fields[i][0]
            elif not batch:
                fields[i] = fn(fields[i])
            else:
                fields[i] = np.stack([_as_numpy(fn(sample)) for sample in fields[i]])
        return tuple(fields)

    def __getitem__(self, index):
        return self._transformed(tuple(a[index] for a in self.arrays), batch=False)

    def __getitems__(self, indices) -> tuple:
        """A whole batch: one array per field, indexed at once."""
        indices = np.asarray(indices, dtype=np.int64)
        return self._transformed(tuple(a[indices] for a in self.arrays), batch=True)


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order."""

    def __init__(self, dataset: Dataset, indices: Sequence[int]):
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64)
        if self.indices.ndim != 1:
            raise ValueError(f"Subset: indices must be one-dimensional, got shape {self.indices.shape}")
        n = len(dataset)
        if len(self.indices) and (self.indices.min() < -n or self.indices.max() >= n):
            raise IndexError(f"Subset: indices outside [0, {n}) for a dataset of {n} samples")

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index):
        return self.dataset[int(self.indices[index])]

    def __getitems__(self, indices):
        inner = self.indices[np.asarray(indices, dtype=np.int64)]
        if hasattr(self.dataset, "__getitems__"):
            return self.dataset.__getitems__(inner)
        return [self.dataset[int(i)] for i in inner]


def random_split(dataset: Dataset, lengths: Sequence, seed: int | None = None) -> list[Subset]:
    """Splits ``dataset`` into non-overlapping random subsets of the given ``lengths``.

    ``lengths`` are counts summing to ``len(dataset)``, or fractions summing to 1 (counts are
    rounded down and the remainder handed out one by one from the first subset on, as PyTorch
    does). The permutation comes from ``np.random.default_rng(seed)`` when a seed is given (the
    split then never depends on anything else the program draws), else from the global generator.
    """
    n = len(dataset)
    lengths = list(lengths)
    if all(isinstance(x, float) for x in lengths) and abs(sum(lengths) - 1.0) < 1e-6:
        if any(x < 0 for x in lengths):
            raise ValueError(f"random_split: fractions must be non-negative, got {lengths}")
        counts = [int(np.floor(n * x)) for x in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        lengths = counts
    if any(int(x) != x or x < 0 for x in lengths) or sum(lengths) != n:
        raise ValueError(
            f"random_split: lengths {lengths} must be non-negative counts summing to "
            f"the dataset size {n}, or fractions summing to 1"
        )
    rng = np.random.default_rng(seed) if seed is not None else generator()
    order = rng.permutation(n)
    bounds = np.cumsum([0] + [int(x) for x in lengths])
    return [Subset(dataset, order[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]


def standardized_split(
    x: np.ndarray, y: np.ndarray, val_fraction: float, seed: int | None = 0, per: str = "channel"
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray], Standardize]:
    """The usual hold-out split of a labelled training set: ``random_split`` into a training and a
    validation part (``val_fraction`` of the samples), a z-score ``Standardize`` fitted on the
    training part only (statistics that saw the validation samples would flatter them) and
    applied to both. Returns ``(x_train, y_train), (x_val, y_val), scaling``; apply ``scaling``
    to the test samples as well."""
    from .transforms import Standardize

    if not 0.0 < float(val_fraction) < 1.0:  # also refuses NaN
        raise ValueError(f"standardized_split: val_fraction must lie in (0, 1), got {val_fraction}")
    train_part, val_part = random_split(TensorDataset(x, y), [1.0 - val_fraction, float(val_fraction)], seed=seed)
    if len(train_part) == 0:
        raise ValueError(f"{len(x)} samples split by val_fraction {val_fraction} leave none for training")
    scaling = Standardize(per=per).fit(x[train_part.indices])
    return (
        (scaling(x[train_part.indices]), y[train_part.indices]),
        (scaling(x[val_part.indices]), y[val_part.indices]),
        scaling,
    )
