"""``DataLoader``: batches of a dataset as minigrad Tensors, shuffled by the global generator.

One epoch is fixed when iteration starts: the sample order (a permutation drawn from
:func:`minigrad.random.generator` when ``shuffle=True``) and, when a random ``transform`` is
set, one seed per batch drawn from the same generator. Each batch is then a pure function of
its indices and its seed, so background threads (``num_workers > 0``) produce exactly the
batches the main thread would, in the same order, and a run is reproducible under
``minigrad.manual_seed``.

The threads overlap loading with compute: numpy indexing and the C++ kernels release the GIL.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Callable

import numpy as np

from ..dtypes import array_of
from ..random import generator
from ..tensor import Tensor

if TYPE_CHECKING:  # annotations only
    from .dataset import Dataset


def default_collate(samples: list) -> tuple:
    """Stacks a list of samples ``(x, y, ...)`` field by field into arrays ``(X, Y, ...)``."""
    if not samples:
        raise ValueError("default_collate: empty batch")
    first = samples[0]
    if isinstance(first, (tuple, list)):
        return tuple(np.stack([np.asarray(getattr(s[k], "data", s[k])) for s in samples]) for k in range(len(first)))
    return (np.stack([np.asarray(array_of(s)) for s in samples]),)


def _to_tensor(field) -> Tensor:
    if isinstance(field, Tensor):
        return field
    array = np.asarray(field)
    if array.dtype.kind in "iu" and array.dtype.type not in (np.int64, np.int32, np.uint8):
        array = array.astype(np.int64)  # e.g. uint16 labels: widen to a dtype Tensors hold
    return Tensor(array)


class DataLoader:
    """Iterates over ``dataset`` in batches of ``batch_size`` samples, each a tuple of Tensors.

    Args:
        shuffle: a new random order every epoch (global generator). Exclusive with ``sampler``.
        drop_last: drop the final batch when it is smaller than ``batch_size``.
        sampler: any re-iterable of sample indices (e.g. a list); defines the order instead.
        collate_fn: turns a list of samples into the batch (default: stack each field). Without
            one, datasets that have ``__getitems__`` (e.g. ``TensorDataset``) build the batch
            with one fancy-index per field.
        transform: a batched transform applied to the batch's first field (the inputs), called
            as ``transform(x, rng)`` with a per-batch generator (see the module docstring).
        num_workers: threads preparing batches ahead of the consumer (0: in the main thread).
        prefetch: batches prepared ahead per worker (``prefetch_factor``, PyTorch's name, sets it too).
        pin_memory, persistent_workers: accepted for PyTorch scripts; they change nothing here
            (no device to pin memory for; worker threads last one iteration either way).
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int = 1,
        shuffle: bool = False,
        drop_last: bool = False,
        sampler: Iterable[int] | None = None,
        collate_fn: Callable | None = None,
        num_workers: int = 0,
        transform: Callable | None = None,
        prefetch: int = 2,
        pin_memory: bool = False,
        persistent_workers: bool = False,
        prefetch_factor: int | None = None,
    ):
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive integer, got {batch_size!r}")
        if int(num_workers) != num_workers or num_workers < 0:
            raise ValueError(f"DataLoader: num_workers must be a non-negative integer, got {num_workers!r}")
        if shuffle and sampler is not None:
            raise ValueError("DataLoader: give either shuffle=True or a sampler, not both")
        # PyTorch's names: pin_memory and persistent_workers change nothing here (no GPU to pin
        # for; the worker threads live as long as an iteration either way); prefetch_factor is
        # ``prefetch``.
        del pin_memory, persistent_workers
        prefetch = prefetch if prefetch_factor is None else prefetch_factor
        if prefetch < 1:
            raise ValueError(f"DataLoader: prefetch must be at least 1, got {prefetch}")
        self.dataset, self.batch_size, self.shuffle = dataset, int(batch_size), bool(shuffle)
        self.drop_last, self.sampler, self.collate_fn = bool(drop_last), sampler, collate_fn
        self.num_workers, self.transform, self.prefetch = int(num_workers), transform, int(prefetch)

    def _order(self) -> np.ndarray:
        if self.sampler is not None:
            return np.fromiter((int(i) for i in self.sampler), dtype=np.int64)
        if self.shuffle:
            return generator().permutation(len(self.dataset))
        return np.arange(len(self.dataset))

    def _num_samples(self) -> int:
        return len(self.sampler) if self.sampler is not None else len(self.dataset)

    def __len__(self) -> int:
        n = self._num_samples()
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _batches(self) -> list[np.ndarray]:
        order = self._order()
        stop = len(order) - len(order) % self.batch_size if self.drop_last else len(order)
        return [order[i : i + self.batch_size] for i in range(0, stop, self.batch_size)]

    def _load(self, indices: np.ndarray, seed) -> tuple:
        """One batch: gather, collate, transform the inputs, wrap as Tensors."""
        if self.collate_fn is not None:
            fields = self.collate_fn([self.dataset[int(i)] for i in indices])
        elif hasattr(self.dataset, "__getitems__"):
            fields = self.dataset.__getitems__(indices)
        else:
            fields = default_collate([self.dataset[int(i)] for i in indices])
        if not isinstance(fields, (tuple, list)):
            fields = (fields,)
        fields = list(fields)
        if self.transform is not None:
            fields[0] = self.transform(np.asarray(getattr(fields[0], "data", fields[0])), np.random.default_rng(seed))
        return tuple(_to_tensor(f) for f in fields)

    def __iter__(self):
        batches = self._batches()
        seeds = (
            generator().integers(0, 2**63 - 1, size=len(batches))
            if self.transform is not None
            else [None] * len(batches)
        )
        if self.num_workers == 0:
            for indices, seed in zip(batches, seeds):
                yield self._load(indices, seed)
            return
        yield from self._iter_threads(batches, seeds)

    def _iter_threads(self, batches, seeds):
        pool = ThreadPoolExecutor(self.num_workers, thread_name_prefix="minigrad-loader")
        pending: deque = deque()
        jobs = iter(zip(batches, seeds))
        try:
            for job in jobs:  # fill the pipeline
                pending.append(pool.submit(self._load, *job))
                if len(pending) >= self.num_workers * self.prefetch:
                    break
            while pending:
                batch = pending.popleft().result()  # in submission order: same as no workers
                job = next(jobs, None)
                if job is not None:
                    pending.append(pool.submit(self._load, *job))
                yield batch
        finally:  # also when the consumer stops early (break, exception)
            for future in pending:
                future.cancel()
            pool.shutdown(wait=True)

    def __repr__(self):
        return (
            f"DataLoader({type(self.dataset).__name__} of {len(self.dataset)}, batch_size={self.batch_size}, "
            f"shuffle={self.shuffle}, drop_last={self.drop_last}, num_workers={self.num_workers})"
        )
