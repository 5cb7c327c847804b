"""Data-parallel training: every rank holds the whole model and trains on its share of each
batch; gradients are averaged across ranks so every rank takes the same step.

:class:`DistributedDataParallel` wraps the model. At construction it copies rank 0's
parameters and buffers to every rank. During backward, parameter gradients are packed into
buckets (the last layers' first, in the order backward produces them); the moment a bucket's
last gradient arrives (a gradient hook on each parameter), a non-blocking all-reduce of the
bucket starts, so communication runs while backward computes the earlier layers. When the
backward ends (a callback the hooks queue on the tape) it waits for the buckets and writes the
averaged gradients into ``.grad``: the optimiser step that follows sees the same gradients on
every rank, the mean of the ranks' gradients, as one process would see for the whole batch.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from .. import distributed as dist
from ..autograd import queue_callback
from ..tensor import Tensor
from .module import Module


class _Bucket:
    """A group of parameters whose gradients travel in one all-reduce."""

    def __init__(self, params: list, dtype):
        self.params = params
        self.offsets = np.cumsum([0] + [p.data.size for p in params])
        self.buffer = np.zeros(int(self.offsets[-1]), dtype=dtype)
        self.pending: set = set()
        self.work = None

    def view(self, i: int) -> np.ndarray:
        return self.buffer[self.offsets[i] : self.offsets[i + 1]].reshape(self.params[i].shape)


class DistributedDataParallel(Module):
    """``DistributedDataParallel(model)``: call it as the model; train as usual. The model's
    parameters must be the same tensors on every rank (same architecture, same order): rank 0's
    values are broadcast at the start. ``bucket_cap_mb``: the largest bucket; None (default)
    makes about four buckets (at most 25 MB each) so that small models overlap too.
    ``no_sync()``: a context in which backward accumulates local gradients without
    communicating (gradient accumulation; the next synchronised backward averages the sum).
    ``.module`` is the wrapped model; ``state_dict()`` is the module's, without a prefix, so a
    checkpoint loads into the plain model on any number of ranks."""

    def __init__(self, module: Module, bucket_cap_mb: float | None = None, broadcast_buffers: bool = True, **_ignored):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel wraps a Module, got {type(module).__name__}")
        if not dist.is_initialized():
            dist.init_process_group()
        self.module = module
        self.broadcast_buffers = broadcast_buffers
        self._sync = True
        self._late: set = set()
        self.last_wait_seconds = 0.0
        params = [p for p in module.parameters() if p.requires_grad]
        self._check_same_model(params)
        for tensor in [*module.parameters(), *(b for b in module.buffers() if b is not None)]:
            dist.broadcast(tensor, src=0)  # every rank starts from rank 0's weights and statistics
            tensor.mark_modified()
        buffers = [b for b in module.buffers() if b is not None and b.data.dtype.kind == "f"]
        self._float_buffers = buffers if dist.get_world_size() > 1 and len({b.dtype for b in buffers}) == 1 else []
        total = sum(p.data.nbytes for p in params)
        cap = bucket_cap_mb * 2**20 if bucket_cap_mb is not None else min(25 * 2**20, max(total / 4, 1))
        self._buckets = self._make_buckets(params, cap)
        self._where = {id(p): (bucket, i) for bucket in self._buckets for i, p in enumerate(bucket.params)}
        self._hooks = []
        for p in params:
            hook = self._gradient_hook(p)
            p.register_hook(hook)
            self._hooks.append((p, hook))

    @staticmethod
    def _check_same_model(params: list) -> None:
        group = dist._require()
        if group.size == 1:
            return
        mine = [(tuple(p.shape), p.data.dtype.str) for p in params]
        everyone = group.comm.allgather(mine)
        for rank, theirs in enumerate(everyone):
            if theirs != mine:
                raise ValueError(
                    f"DistributedDataParallel: rank {rank}'s model differs from rank {group.rank}'s "
                    f"({len(theirs)} vs {len(mine)} trainable parameters, or different shapes): every rank must "
                    "build the same model"
                )

    @staticmethod
    def _make_buckets(params: list, cap: float) -> list:
        """Buckets in reverse parameter order (backward produces the last layers' gradients first),
        one dtype each, each up to ``cap`` bytes."""
        buckets, current, size = [], [], 0
        for p in reversed(params):
            if current and (size + p.data.nbytes > cap or p.data.dtype != current[0].data.dtype):
                buckets.append(_Bucket(current, current[0].data.dtype))
                current, size = [], 0
            current.append(p)
            size += p.data.nbytes
        if current:
            buckets.append(_Bucket(current, current[0].data.dtype))
        return buckets

    # ---- forward: the wrapped module's
    def forward(self, *args, **kwargs) -> Any:
        if self.broadcast_buffers and self.training and self._float_buffers:
            # running statistics: every rank keeps rank 0's, as PyTorch does; one message for all
            packed = np.concatenate([b.data.reshape(-1) for b in self._float_buffers])
            dist.start_broadcast(packed, src=0)
            offset = 0
            for b in self._float_buffers:
                b.data[...] = packed[offset : offset + b.data.size].reshape(b.shape)
                b.mark_modified()
                offset += b.data.size
        if self._sync and self.training:
            for bucket in self._buckets:
                bucket.pending = {id(p) for p in bucket.params}
                bucket.work = None
            self._late.clear()
            self._armed, self._queued = True, False
        else:
            self._armed = False
        return self.module(*args, **kwargs)

    # ---- backward: a hook per parameter starts each bucket's all-reduce when it is full
    def _gradient_hook(self, parameter: Tensor):
        def hook(grad):
            if not getattr(self, "_armed", False):
                return None
            bucket, i = self._where[id(parameter)]
            if not self._queued:  # the first gradient of this backward: finish when the backward ends
                queue_callback(self._finish)
                self._queued = True
            if bucket.work is not None:  # a second use of the parameter after its bucket left
                self._late.add(id(parameter))
                return None
            total = grad if parameter.grad is None else parameter.grad.data + grad  # no_sync sums included
            np.copyto(bucket.view(i), total)
            bucket.pending.discard(id(parameter))
            if not bucket.pending:
                bucket.work = dist.start_all_reduce(bucket.buffer, dist.ReduceOp.AVG)
            for other in self._buckets:  # let MPI make progress on the ones in flight
                if other.work is not None:
                    other.work.is_completed()
            return None

        return hook

    def _finish(self) -> None:
        """Waits for every bucket and writes the averaged gradients into ``.grad``."""
        self._armed = False
        for bucket in self._buckets:
            if bucket.work is None:  # some parameters got no gradient this time: reduce zeros for them
                for i, p in enumerate(bucket.params):
                    if id(p) in bucket.pending:
                        bucket.view(i)[...] = p.grad.data if p.grad is not None else 0
                bucket.work = dist.start_all_reduce(bucket.buffer, dist.ReduceOp.AVG)
        started = time.perf_counter()
        for bucket in self._buckets:
            bucket.work.wait()
        self.last_wait_seconds = time.perf_counter() - started  # communication backward did not hide
        for bucket in self._buckets:
            for i, p in enumerate(bucket.params):
                if id(p) in self._late:  # its bucket left with part of its gradient: reduce it whole
                    dist.start_all_reduce(p.grad.data, dist.ReduceOp.AVG).wait()
                    continue
                if p.grad is None:
                    p.grad = Tensor(bucket.view(i).copy())
                else:
                    p.grad.data[...] = bucket.view(i)

    @contextlib.contextmanager
    def no_sync(self) -> Iterator[None]:
        """Backward passes inside accumulate local gradients without communicating."""
        previous, self._sync = self._sync, False
        try:
            yield
        finally:
            self._sync = previous

    # ---- a checkpoint is the module's
    def state_dict(self, *args, **kwargs) -> dict:
        return self.module.state_dict(*args, **kwargs)

    def load_state_dict(self, state_dict, strict: bool = True) -> Any:
        return self.module.load_state_dict(state_dict, strict=strict)

    def remove_hooks(self) -> None:
        """Takes the gradient hooks off the module's parameters (the module trains alone again)."""
        for p, hook in self._hooks:
            if hook in p._hooks:
                p._hooks.remove(hook)
        self._hooks = []


__all__ = ["DistributedDataParallel"]
