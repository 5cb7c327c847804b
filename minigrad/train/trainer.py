"""The training loop: ``Trainer.fit`` (and the one-call ``fit``) returning a :class:`History`.

One epoch: ``model.train()``; for each batch ``output = model(x)``, ``loss = loss_fn(output, y)``,
a finiteness check, ``optimizer.zero_grad()``, ``loss.backward()``, ``optimizer.step()``; then
validation in eval mode, one history row, and the callbacks (schedules step, early stopping
decides, then checkpoints are written). ``fit(epochs=N)`` runs until N epochs are done in total,
so a trainer restored from a checkpoint continues where it stopped, callbacks included (the best
value seen, the patience count): a resumed run is the uninterrupted one, bit for bit.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .. import distributed as dist
from ..amp import autocast
from ..io import CorruptFileError
from .callbacks import Callback, LRSchedulerCallback, ProgressBar
from .checkpoint import load_checkpoint, restore_checkpoint, save_checkpoint
from .evaluation import evaluate
from .history import History
from .metrics import resolve

if TYPE_CHECKING:  # annotations only
    import os
    from collections.abc import Iterable, Mapping, Sequence
    from typing import Callable

    from ..nn.module import Module
    from ..optim import Optimizer, SwitchOptimizer
    from ..optim.lr_scheduler import LRScheduler, ReduceLROnPlateau
    from ..tensor import Tensor


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite; training stopped before the step that would have used it."""

    def __init__(self, message: str, epoch: int, step: int, history: History):
        super().__init__(message)
        self.epoch, self.step, self.history = epoch, step, history


def _learning_rate(optimizer) -> float | None:
    groups = getattr(optimizer, "param_groups", None)
    return float(groups[0]["lr"]) if groups else None


PRECISIONS = ("fp32", "bf16")


class Trainer:
    """Holds what a training run needs and runs it.

    Args:
        model: called as ``model(x)``; ``train()``/``eval()``/``state_dict()`` are used when present.
        optimizer: ``zero_grad()``, ``step()``, ``param_groups`` and ``state_dict()``.
        loss_fn: ``loss_fn(output, target) -> scalar Tensor``.
        scheduler: stepped once per epoch (wrapped in :class:`LRSchedulerCallback`).
        callbacks: :class:`Callback` objects; a :class:`ProgressBar` is added when ``progress``.
        metrics: names (``"accuracy"``, ``"top5"``) or ``{name: fn(output, target)}``.
        extra: saved into every checkpoint (e.g. how to rebuild the model).
        precision: ``"fp32"``, or ``"bf16"`` to run each training forward and loss under
            ``autocast("cpu", dtype=bfloat16)`` (minigrad/amp.py); evaluation stays float32.
    """

    def __init__(
        self,
        model: Module,
        optimizer: Optimizer | SwitchOptimizer,
        loss_fn: Callable[..., Tensor],
        scheduler: LRScheduler | ReduceLROnPlateau | None = None,
        callbacks: Sequence[Callback] = (),
        metrics: Sequence[str | Callable] | Mapping[str, Callable] | None = ("accuracy",),
        progress: bool = True,
        extra: dict | None = None,
        precision: str = "fp32",
    ):
        if precision not in PRECISIONS:
            raise ValueError(f"Trainer: precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        self.precision = precision
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn
        self.metrics = resolve(metrics)
        callbacks = list(callbacks)
        if scheduler is not None:
            callbacks.append(LRSchedulerCallback(scheduler))
        if progress and not any(isinstance(c, ProgressBar) for c in callbacks):
            callbacks.append(ProgressBar())
        for c in callbacks:
            if not isinstance(c, Callback):
                raise TypeError(f"callbacks must be Callback instances, got {type(c).__name__}")
        # schedules first: a checkpoint written in the same epoch then holds the stepped schedule
        self.callbacks = sorted(callbacks, key=lambda c: not isinstance(c, LRSchedulerCallback))
        schedules = [c.scheduler for c in self.callbacks if isinstance(c, LRSchedulerCallback)]
        self.scheduler = schedules[0] if schedules else None
        self.extra = dict(extra or {})
        self.history = History()
        self.epoch = 0  # epochs completed
        self.global_step = 0  # optimiser steps taken
        self.epochs = None  # the target of the running fit
        self.stop_training = False
        self.train_loader = None
        self._parallel = None  # the DistributedDataParallel wrapper under mpirun/srun

    # ---- checkpoints
    def save_checkpoint(self, path: str | os.PathLike) -> Path:
        """Writes the checkpoint; in data-parallel training only rank 0 writes (every rank holds
        the same state), and the file loads on any number of ranks."""
        if dist.get_rank() != 0:
            return Path(path)
        return save_checkpoint(
            path,
            self.model,
            self.optimizer,
            self.scheduler,
            self.epoch,
            self.history,
            {"global_step": self.global_step, **self.extra},
            self._callback_states(),
        )

    def load_checkpoint(self, path: str | os.PathLike) -> Trainer:
        """Restores model, optimiser, scheduler, epoch count, history, the global random state and
        the callbacks' states."""
        state = load_checkpoint(path)
        try:  # the parts are data from a file: a part of the wrong form names the file, not a line here
            self.epoch = restore_checkpoint(state, self.model, self.optimizer, self.scheduler)
            if state.get("history") is not None:
                self.history.load_state_dict(state["history"])
            self.global_step = int((state.get("extra") or {}).get("global_step", 0))
            saved = {(entry["callback"], entry["index"]): entry["state"] for entry in state.get("callbacks") or []}
            for key, callback in self._keyed_callbacks():
                if key in saved:  # a callback added since the checkpoint starts fresh
                    callback.load_state_dict(saved[key])
        except (KeyError, TypeError, AttributeError, IndexError, ValueError) as error:
            message = error.args[0] if isinstance(error, KeyError) and error.args else error
            raise CorruptFileError(path, f"does not fit this trainer ({type(error).__name__}: {message})") from error
        return self

    def _keyed_callbacks(self):
        """Each callback with its key in a checkpoint: class name and how many of that class came
        before it, so a resumed run may add or drop other callbacks."""
        counts: dict[str, int] = {}
        for callback in self.callbacks:
            name = type(callback).__name__
            counts[name] = counts.get(name, -1) + 1
            yield (name, counts[name]), callback

    def _callback_states(self) -> list:
        return [
            {"callback": name, "index": index, "state": state}
            for (name, index), callback in self._keyed_callbacks()
            if (state := callback.state_dict())
        ]

    # ---- the loop
    def _call(self, hook: str, *args) -> None:
        others = dist.get_rank() != 0  # progress bars, printed and logged lines: rank 0's only
        for callback in self.callbacks:
            if not (others and callback.rank_zero_only):
                getattr(callback, hook)(self, *args)

    def _train_epoch(self, epoch: int) -> dict:
        if hasattr(self.model, "train"):
            self.model.train()
        totals = dict.fromkeys(["loss", *self.metrics], 0.0)
        count = 0
        for step, (x, y, *_) in enumerate(self.train_loader, start=1):
            with autocast("cpu", enabled=self.precision == "bf16"):  # dtype: bfloat16
                output = (self._parallel or self.model)(x)
                loss = self.loss_fn(output, y)
            value = float(loss.item())
            if not math.isfinite(value):
                lr = _learning_rate(self.optimizer)
                hint = (
                    f"The learning rate ({lr:g}) is probably too high: try a lower one, e.g. {lr / 10:g}."
                    if lr is not None
                    else "The learning rate is probably too high: try a lower one."
                )
                raise TrainingDiverged(
                    f"loss became {value} at epoch {epoch}, step {step} (optimiser step {self.global_step + 1}); "
                    f"training stopped before using it, and checkpoints written so far are untouched. {hint}",
                    epoch,
                    step,
                    self.history,
                )
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            self.global_step += 1
            n = len(y)
            batch_logs = {"loss": value, "size": n}
            for name, fn in self.metrics.items():
                batch_logs[name] = fn(output.data, y.data)
                totals[name] += batch_logs[name] * n
            totals["loss"] += value * n
            count += n
            self._call("on_batch_end", step, batch_logs)
        if count == 0:
            raise ValueError("the training loader yielded no samples (drop_last with too few samples?)")
        if self._parallel is not None:  # every rank's samples: the epoch's numbers over the whole data set
            summed = np.array([*totals.values(), count], dtype=np.float64)
            dist.all_reduce(summed)
            totals, count = dict(zip(totals, summed[:-1])), summed[-1]
        return {f"train_{name}": total / count for name, total in totals.items()}

    def fit(self, train_loader: Iterable, val_loader: Iterable | None = None, epochs: int = 1) -> History:
        """Trains until ``epochs`` epochs are done in total or a callback stops training."""
        if int(epochs) != epochs or epochs < 1:
            raise ValueError(f"fit: epochs must be a positive integer, got {epochs!r}")
        if dist.launched_size() > 1 and self._parallel is None:  # started by mpirun/srun: data-parallel
            train_loader, val_loader = self._go_parallel(train_loader, val_loader)
        self.train_loader, self.epochs, self.stop_training = train_loader, int(epochs), False
        self._call("on_train_begin")
        try:
            while self.epoch < self.epochs and not self.stop_training:
                epoch = self.epoch + 1
                self._call("on_epoch_begin", epoch)
                if hasattr(getattr(train_loader, "sampler", None), "set_epoch"):
                    train_loader.sampler.set_epoch(epoch)  # a new order every epoch, the same on every rank
                lr = _learning_rate(self.optimizer)
                start = time.perf_counter()
                logs = {"epoch": epoch, **self._train_epoch(epoch)}
                if val_loader is not None:
                    scores = self._evaluate(val_loader)
                    logs.update({f"val_{name}": value for name, value in scores.items()})
                logs["lr"], logs["time"] = lr, time.perf_counter() - start
                self.epoch = epoch
                self.history.append(logs)
                self._call("on_epoch_end", epoch, logs)
                self._call("on_epoch_complete", epoch, logs)
                if self._parallel is not None:  # rank 0's checkpoint is on disk before anyone reads it
                    dist.barrier()
        finally:
            self._call("on_train_end")
        return self.history

    # ---- data-parallel training (minigrad.distributed): the same loop on every rank
    def _go_parallel(self, train_loader, val_loader):
        """Wraps the model in DistributedDataParallel and gives each rank its share of both
        loaders (a DistributedSampler for training; an unpadded split for validation, so its
        averages are exact)."""
        from ..data import DataLoader, DistributedSampler
        from ..nn.parallel import DistributedDataParallel
        from ..random import generator

        dist.init_process_group()
        self._parallel = DistributedDataParallel(self.model)
        seed = dist.all_reduce_object(int(generator().integers(2**31)) if dist.get_rank() == 0 else 0)

        def shard(loader, sampler_for):  # other iterables are used as given: they must hold each rank's share
            if not isinstance(loader, DataLoader) or isinstance(loader.sampler, DistributedSampler):
                return loader
            return DataLoader(
                loader.dataset,
                batch_size=loader.batch_size,
                drop_last=loader.drop_last,
                sampler=sampler_for(loader),
                collate_fn=loader.collate_fn,
                num_workers=loader.num_workers,
                transform=loader.transform,
            )

        train_loader = shard(
            train_loader, lambda loader: DistributedSampler(loader.dataset, shuffle=loader.shuffle, seed=seed)
        )
        if val_loader is not None:
            val_loader = shard(
                val_loader, lambda loader: list(range(dist.get_rank(), len(loader.dataset), dist.get_world_size()))
            )
        return train_loader, val_loader

    def _evaluate(self, loader) -> dict:
        """Validation scores; with several ranks, each scores its share and the sums are combined."""
        if self._parallel is None:
            return evaluate(self.model, loader, self.loss_fn, self.metrics)
        count = len(loader.sampler) if getattr(loader, "sampler", None) is not None else len(loader.dataset)
        scores = evaluate(self.model, loader, self.loss_fn, self.metrics) if count else {}
        names = ["loss", *self.metrics]
        summed = np.array([scores.get(name, 0.0) * count for name in names] + [count], dtype=np.float64)
        dist.all_reduce(summed)
        return {name: total / summed[-1] for name, total in zip(names, summed[:-1])}


def fit(
    model: Module,
    optimizer: Optimizer | SwitchOptimizer,
    loss_fn: Callable[..., Tensor],
    train_loader: Iterable,
    val_loader: Iterable | None = None,
    epochs: int = 1,
    callbacks: Sequence[Callback] = (),
    scheduler: LRScheduler | ReduceLROnPlateau | None = None,
    metrics: Sequence[str | Callable] | Mapping[str, Callable] | None = ("accuracy",),
    progress: bool = True,
    resume_from: str | os.PathLike | None = None,
) -> History:
    """One call: builds a :class:`Trainer` (restored from the checkpoint ``resume_from`` if given)
    and runs :meth:`Trainer.fit`."""
    trainer = Trainer(
        model, optimizer, loss_fn, scheduler=scheduler, callbacks=callbacks, metrics=metrics, progress=progress
    )
    if resume_from is not None:
        trainer.load_checkpoint(resume_from)
    return trainer.fit(train_loader, val_loader, epochs)
