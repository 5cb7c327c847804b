"""Callbacks: code that runs at fixed points of :meth:`Trainer.fit`.

Each hook receives the trainer (its ``model``, ``optimizer``, ``history``, ``epoch`` and the
``stop_training`` flag). ``on_epoch_end`` gets the epoch's row of numbers (``logs``), the same
row the history records. Order: learning-rate schedules first, then the rest as given; then
``on_epoch_complete`` of every callback, when the epoch's state is final: checkpoints are written
there, so they hold every callback's decision about that epoch.

A callback with state that must survive a resume (a best value, a patience count) returns it
from ``state_dict()`` (numbers, strings, arrays, lists and dicts) and takes it back in
``load_state_dict()``; :meth:`Trainer.save_checkpoint` stores every callback's state and
:meth:`Trainer.load_checkpoint` hands each back to the callback of the same class and position.
"""

from __future__ import annotations

import importlib.util
import inspect
import math
import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..dtypes import array_of

if TYPE_CHECKING:  # annotations only: the trainer module imports this one
    import os
    from typing import TextIO

    from ..optim.lr_scheduler import LRScheduler, ReduceLROnPlateau
    from .trainer import Trainer


class Callback:
    rank_zero_only = False  # in data-parallel training, run only on rank 0 (printing, logging)

    def on_train_begin(self, trainer: Trainer) -> None: ...
    def on_epoch_begin(self, trainer: Trainer, epoch: int) -> None: ...
    def on_batch_end(self, trainer: Trainer, step: int, logs: dict) -> None: ...
    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict) -> None: ...
    def on_epoch_complete(self, trainer: Trainer, epoch: int, logs: dict) -> None: ...
    def on_train_end(self, trainer: Trainer) -> None: ...

    def state_dict(self) -> dict:
        """What a resumed run needs to carry on as if never interrupted (none by default)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Takes back what :meth:`state_dict` returned."""


class _Monitor:  # listed before Callback in subclasses: its state_dict wins
    """Tracks the best value of one logged number (``mode``: "min", "max", or "auto" = max for
    accuracies, min otherwise); an improvement must beat the best by more than ``min_delta``."""

    def __init__(self, monitor: str, mode: str, min_delta: float = 0.0):
        if mode == "auto":
            mode = "max" if "acc" in monitor else "min"
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min', 'max' or 'auto', got {mode!r}")
        if min_delta < 0:
            raise ValueError(f"min_delta must be non-negative, got {min_delta}")
        self.monitor, self.mode, self.min_delta = monitor, mode, float(min_delta)
        self.best = math.inf if mode == "min" else -math.inf

    def value(self, logs: dict) -> float:
        if logs.get(self.monitor) is None:
            raise KeyError(
                f"{self.monitor!r} is not logged (logged: {', '.join(k for k, v in logs.items() if v is not None)}); "
                f"monitoring a val_* value needs a val_loader"
            )
        return float(logs[self.monitor])

    def improved(self, value: float) -> bool:
        if math.isnan(value):
            return False
        better = value < self.best - self.min_delta if self.mode == "min" else value > self.best + self.min_delta
        if better:
            self.best = value
        return better

    def state_dict(self) -> dict:
        return {"best": self.best}

    def load_state_dict(self, state: dict) -> None:
        self.best = float(state["best"])


class EarlyStopping(_Monitor, Callback):
    """Stops training when ``monitor`` has not improved for ``patience`` epochs in a row.

    With ``restore_best_weights`` the model gets the weights of its best epoch back when training
    ends (stopped early or not), so the model left behind is the one that generalised best.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 5,
        min_delta: float = 0.0,
        mode: str = "auto",
        restore_best_weights: bool = True,
    ):
        _Monitor.__init__(self, monitor, mode, min_delta)
        if int(patience) != patience or patience < 1:
            raise ValueError(f"EarlyStopping: patience must be a positive integer, got {patience!r}")
        self.patience, self.restore_best_weights = int(patience), restore_best_weights
        self.wait, self.best_epoch, self.stopped_epoch, self.best_weights = 0, None, None, None

    def state_dict(self) -> dict:
        return {
            **_Monitor.state_dict(self),
            "wait": self.wait,
            "best_epoch": self.best_epoch,
            "stopped_epoch": self.stopped_epoch,
            "best_weights": self.best_weights,
        }

    def load_state_dict(self, state: dict) -> None:
        _Monitor.load_state_dict(self, state)
        self.wait, self.best_epoch, self.stopped_epoch = int(state["wait"]), state["best_epoch"], state["stopped_epoch"]
        self.best_weights = state["best_weights"]

    def on_train_begin(self, trainer: Trainer) -> None:
        # resumed from the epoch that stopped the run: the uninterrupted run would not go on either
        if self.stopped_epoch is not None and self.stopped_epoch == trainer.epoch:
            trainer.stop_training = True

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict) -> None:
        if self.improved(self.value(logs)):
            self.wait, self.best_epoch = 0, epoch
            if self.restore_best_weights:
                self.best_weights = {k: np.array(array_of(v), copy=True) for k, v in trainer.model.state_dict().items()}
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            trainer.stop_training = True

    def on_train_end(self, trainer: Trainer) -> None:
        if self.restore_best_weights and self.best_weights is not None and self.best_epoch != trainer.epoch:
            trainer.model.load_state_dict(self.best_weights)


_PLACEHOLDER = re.compile(r"\{(\w+)(?::([^{}]*))?\}")


def format_path(template: str, values: dict) -> str:
    """Fills ``{name}`` or ``{name:spec}`` (``{epoch:03d}``, ``{val_loss:.4f}``) where ``name`` is
    a number in ``values``; every other brace is kept as written, so a path such as ``a{b}`` is
    never a formatting error."""

    def fill(match):
        value = values.get(match.group(1))
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return match.group(0)
        return format(value, match.group(2) or "")

    return _PLACEHOLDER.sub(fill, template)


class ModelCheckpoint(_Monitor, Callback):
    """Writes a full training checkpoint (see :func:`save_checkpoint`) to ``path`` at the end of
    an epoch: every epoch, or with ``save_best_only`` only when ``monitor`` improved. Writes are
    atomic: an interrupted save leaves the previous file whole.

    The file name (not the directories) may hold ``{epoch}`` and any number the epoch logged
    (``{val_loss}``, ``{val_accuracy}``, ``{lr}``...), with an optional format spec:
    ``ck{epoch:03d}-{val_loss:.4f}.safetensors``. Other braces are part of the name."""

    def __init__(
        self, path: str | os.PathLike, monitor: str = "val_loss", mode: str = "auto", save_best_only: bool = True
    ):
        _Monitor.__init__(self, monitor, mode)
        self.path, self.save_best_only = Path(path), save_best_only
        for match in _PLACEHOLDER.finditer(self.path.name):  # a bad spec fails now, not after an epoch
            try:
                format(1 if match.group(1) == "epoch" else 0.5, match.group(2) or "")
            except ValueError as error:
                raise ValueError(f"ModelCheckpoint: cannot format {match.group(0)} in {str(path)!r}: {error}") from None
        self.last_saved: Path | None = None
        self._due = False

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict) -> None:
        self._due = not self.save_best_only or self.improved(self.value(logs))

    def on_epoch_complete(self, trainer: Trainer, epoch: int, logs: dict) -> None:
        if self._due:
            self._due = False
            self.last_saved = trainer.save_checkpoint(self.path.with_name(format_path(self.path.name, logs)))


class LRSchedulerCallback(Callback):
    """Steps a learning-rate scheduler once per epoch. Schedulers whose ``step`` takes a metric
    (``ReduceLROnPlateau``) receive the logged ``monitor`` value."""

    def __init__(self, scheduler: LRScheduler | ReduceLROnPlateau, monitor: str = "val_loss"):
        self.scheduler, self.monitor = scheduler, monitor
        parameters = list(inspect.signature(scheduler.step).parameters.values())
        self.takes_metric = (
            bool(parameters)
            and parameters[0].default is inspect.Parameter.empty
            and parameters[0].kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        )

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict) -> None:
        if self.takes_metric:
            if logs.get(self.monitor) is None:
                raise KeyError(
                    f"LRSchedulerCallback: {type(self.scheduler).__name__} needs {self.monitor!r}, which is not logged"
                )
            self.scheduler.step(logs[self.monitor])
        else:
            self.scheduler.step()

    def state_dict(self) -> dict:
        return self.scheduler.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.scheduler.load_state_dict(state)


class CSVLogger(Callback):
    """Rewrites the whole history as CSV at ``path`` after every epoch (atomically)."""

    rank_zero_only = True

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict) -> None:
        trainer.history.to_csv(self.path)


class ProgressBar(Callback):
    """A tqdm bar per epoch with the running loss, accuracy and samples/s. It shows only when
    ``stream`` is a terminal and tqdm is installed (``pip install 'minigrad[progress]'``), so
    logs and pipes stay clean."""

    rank_zero_only = True

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = False
        self.bar = None
        self._samples, self._start = 0, 0.0

    def on_train_begin(self, trainer: Trainer) -> None:
        self.enabled = importlib.util.find_spec("tqdm") is not None and bool(
            getattr(self.stream, "isatty", lambda: False)()
        )

    def on_epoch_begin(self, trainer: Trainer, epoch: int) -> None:
        if self.enabled:
            from tqdm.auto import tqdm

            total = len(trainer.train_loader) if hasattr(trainer.train_loader, "__len__") else None
            self.bar = tqdm(total=total, desc=f"epoch {epoch}", file=self.stream, leave=False, unit="batch")
        self._samples, self._start = 0, time.perf_counter()

    def on_batch_end(self, trainer: Trainer, step: int, logs: dict) -> None:
        if self.bar is not None:
            self._samples += logs["size"]
            rate = self._samples / max(time.perf_counter() - self._start, 1e-9)
            postfix = {"loss": f"{logs['loss']:.4f}", "samples/s": f"{rate:.0f}"}
            if "accuracy" in logs:
                postfix["acc"] = f"{logs['accuracy']:.3f}"
            self.bar.set_postfix(postfix, refresh=self.bar.n + 1 == self.bar.total)  # last batch: show it
            self.bar.update(1)

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict) -> None:
        self.on_train_end(trainer)

    def on_train_end(self, trainer: Trainer) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class PrintEpochs(Callback):
    """Prints one summary line per epoch to ``stream`` (stdout by default), e.g.
    ``epoch  3/20  train_loss 0.2105  train_accuracy 0.9413  val_loss 0.2512  ...  1.7s``."""

    rank_zero_only = True

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict) -> None:
        total = f"/{trainer.epochs}" if trainer.epochs else ""
        numbers = "  ".join(
            f"{k} {v:.4f}" for k, v in logs.items() if k not in ("epoch", "time", "lr") and isinstance(v, float)
        )
        print(
            f"epoch {epoch:3d}{total}  {numbers}  lr {logs.get('lr', float('nan')):.3g}  {logs.get('time', 0.0):.1f}s",
            file=self.stream or sys.stdout,
            flush=True,
        )
