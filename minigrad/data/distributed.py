"""``DistributedSampler``: each rank's share of a data set, for data-parallel training."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np


class DistributedSampler:
    """The indices rank ``rank`` of ``num_replicas`` reads in the current epoch.

    Every epoch has one order of the whole data set (a permutation drawn from ``seed + epoch``
    when ``shuffle``, else 0..N-1) that does not depend on the number of ranks; rank r takes
    positions r, r + R, r + 2R, ... of it. So with a per-rank batch b, step k's batches of all
    ranks together are exactly positions kRb .. (k+1)Rb - 1 of that order: the global batches of
    one process with batch R*b, whatever R is (as long as R*b stays the same). Each sample is
    seen once per epoch across ranks; when N is not a multiple of R the order is padded with its
    first samples (``drop_last=False``, so every rank has the same number of steps) or cut to a
    multiple (``drop_last=True``). Call ``set_epoch(epoch)`` before each epoch for a new order
    (``fit`` does it)."""

    def __init__(self, dataset, num_replicas: int | None = None, rank: int | None = None, shuffle: bool = True,
                 seed: int = 0, drop_last: bool = False):  # fmt: skip
        from .. import distributed as dist

        num_replicas = dist.get_world_size() if num_replicas is None else num_replicas
        rank = dist.get_rank() if rank is None else rank
        if int(num_replicas) != num_replicas or num_replicas < 1:
            raise ValueError(f"DistributedSampler: num_replicas must be a positive whole number, got {num_replicas!r}")
        if int(rank) != rank or not 0 <= rank < num_replicas:
            raise ValueError(f"DistributedSampler: rank must be in 0..{num_replicas - 1}, got {rank!r}")
        self.dataset, self.num_replicas, self.rank = dataset, int(num_replicas), int(rank)
        self.shuffle, self.seed, self.drop_last, self.epoch = bool(shuffle), int(seed), bool(drop_last), 0
        n = len(dataset)
        self.num_samples = n // self.num_replicas if self.drop_last else math.ceil(n / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def order(self) -> np.ndarray:
        """The epoch's order of the whole data set, padded or cut to ``total_size``."""
        n = len(self.dataset)
        order = np.random.default_rng(self.seed + self.epoch).permutation(n) if self.shuffle else np.arange(n)
        if self.total_size <= n:
            return order[: self.total_size]
        return np.concatenate([order, np.resize(order, self.total_size - n)])

    def __iter__(self) -> Iterator[int]:
        return iter(self.order()[self.rank :: self.num_replicas].tolist())

    def __len__(self) -> int:
        return self.num_samples
