"""Hyper-parameter search on Optuna (``pip install 'minigrad[tune]'``).

Learning rate, batch size, dropout... are chosen by trying configurations and keeping the one
with the best *validation* score. Random search beats a grid when few hyper-parameters matter
(Bergstra and Bengio, 2012); Optuna's default TPE sampler goes further and proposes values near
the good ones seen so far. Each trial reports its validation score after every epoch, and a
pruner stops trials that are clearly worse than earlier ones at the same epoch, so the budget
goes to the promising ones.

    def build(config):
        model = models.mlp([64, config["width"], 10], dropout=config["dropout"])
        return Experiment(model, optim.Adam(model.parameters(), lr=config["lr"]), F.cross_entropy,
                          train_loader, val_loader, epochs=10)

    result = search(build, {"lr": LogUniform(1e-4, 1e-1), "width": Choice([32, 64, 128]),
                            "dropout": Uniform(0.0, 0.5)}, n_trials=30, seed=0)
    result.best_config, result.best_value

Where the trials live (``storage``):

* ``None`` (default): in this process's memory; gone when it ends.
* ``"sqlite:///study.db"``: a file; several processes on one machine run ``search`` with the same
  ``storage`` and ``study_name`` and share one study (each process runs its own ``n_trials``,
  or, with ``study_trials``, the study as a whole gets that many; the sampler sees every
  finished trial, whoever ran it).
* an RDB URL such as ``"postgresql://user:password@host:5432/optuna"`` (needs a driver, e.g.
  ``pip install psycopg2-binary``): the same across machines; create the database once, then start
  ``minigrad tune ... --storage URL --study-name NAME`` on each machine.

With a shared study give each process a different ``seed`` (or none): equal seeds make equal
proposals. Joining a study that optimises the other way (a study of losses, ``"minimize"``, with
an accuracy ``monitor``) is an error, not a search that keeps the worst trial. With RDB storage
each running trial records a heartbeat every ``heartbeat_interval`` seconds; a trial whose worker
died (killed, out of memory, machine lost) is marked FAILED once its heartbeat is older than
``grace_period``, by the next worker that starts a trial, instead of staying RUNNING forever.
"""

from __future__ import annotations

import math
import os
import socket
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Callable

from ..random import manual_seed
from ..train import Callback, Trainer, TrainingDiverged


def _optuna():
    try:
        import optuna
    except ImportError:
        raise ImportError("hyper-parameter search needs Optuna: pip install 'minigrad[tune]'") from None
    return optuna


# ------------------------------------------------------------------------- the search space
@dataclass(frozen=True)
class Uniform:
    """A float drawn uniformly from [low, high]."""

    low: float
    high: float

    def suggest(self, trial, name) -> float:
        return trial.suggest_float(name, self.low, self.high)


@dataclass(frozen=True)
class LogUniform:
    """A float whose logarithm is uniform on [log low, log high]: learning rates, weight decay."""

    low: float
    high: float

    def suggest(self, trial, name) -> float:
        if self.low <= 0:
            raise ValueError(f"LogUniform {name!r}: low must be positive, got {self.low}")
        return trial.suggest_float(name, self.low, self.high, log=True)


@dataclass(frozen=True)
class IntRange:
    """An integer in [low, high] (both included), optionally log-uniform (layer widths)."""

    low: int
    high: int
    log: bool = False

    def suggest(self, trial, name) -> int:
        return trial.suggest_int(name, self.low, self.high, log=self.log)


@dataclass(frozen=True)
class Choice:
    """One of a few values (numbers, strings, booleans or None)."""

    options: Sequence

    def suggest(self, trial, name) -> Any:
        return trial.suggest_categorical(name, list(self.options))


def _spec(name, spec):
    if isinstance(spec, list):  # shorthand: a list is a choice
        return Choice(tuple(spec))
    if not hasattr(spec, "suggest"):
        raise TypeError(
            f"search space entry {name!r}: use Uniform, LogUniform, IntRange, Choice or a list, got {spec!r}"
        )
    return spec


# ------------------------------------------------------------------------- one trial
@dataclass
class Experiment:
    """What ``build_fn(config)`` returns: everything one training run needs. ``monitor`` is the
    History column the trial is scored on (best epoch counts)."""

    model: Any
    optimizer: Any
    loss_fn: Callable
    train_loader: Any
    val_loader: Any
    epochs: int
    scheduler: Any = None
    metrics: Any = ("accuracy",)
    callbacks: list = field(default_factory=list)


class _ReportToTrial(Callback):
    """Hands each epoch's validation score to Optuna and stops the trial if the pruner says so."""

    def __init__(self, trial, monitor: str):
        self.trial, self.monitor = trial, monitor

    def on_epoch_end(self, trainer, epoch, logs):
        value = logs.get(self.monitor)
        if value is None:
            raise KeyError(
                f"tune: {self.monitor!r} is not logged (logged: {', '.join(logs)}); the Experiment needs a val_loader"
            )
        self.trial.report(float(value), epoch)
        if self.trial.should_prune():
            raise _optuna().TrialPruned(f"epoch {epoch}: {self.monitor} {value:.4f}")


@dataclass
class SearchResult:
    best_config: dict
    best_value: float
    study: Any  # the optuna Study: every trial, its parameters and intermediate values

    @property
    def trials(self) -> list:
        return self.study.trials


def _open_study(storage, attempts: int = 8, heartbeat: dict | None = None, **options):
    """Creates or joins a study. SQLite files get a generous lock timeout, so processes sharing one
    file wait for each other. ``heartbeat`` (``heartbeat_interval``, ``grace_period``) goes to
    an RDB storage given as a URL. Processes that start together race to create the tables and the
    study row; the loser sees "already exists", a unique-constraint violation or a duplicate study
    and simply tries again,
    finding what the winner made."""
    optuna = _optuna()
    url = storage
    for attempt in range(attempts):
        try:
            if isinstance(storage, str):
                engine = {"connect_args": {"timeout": 60}} if storage.startswith("sqlite:") else {}
                with warnings.catch_warnings():  # heartbeats are "experimental" since optuna 2.9, and needed
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    storage = optuna.storages.RDBStorage(storage, engine_kwargs=engine, **(heartbeat or {}))
            return optuna.create_study(storage=storage, load_if_exists=True, **options)
        except Exception as error:  # sqlalchemy's OperationalError/IntegrityError, optuna's duplicate
            racing = (
                "already exists" in str(error)
                or "UNIQUE constraint" in str(error)
                or type(error).__name__ in ("DuplicatedStudyError", "IntegrityError")
            )
            if not racing or attempt == attempts - 1:
                # a wrong URL, a missing driver, an unreadable file: the caller's input, said as such
                raise ValueError(
                    f"tune: cannot open the study {options.get('study_name')!r} in storage "
                    f"{url!r}: {type(error).__name__}: {error}"
                ) from error
            time.sleep(0.1 * (attempt + 1))


def _wait_for_running(study, limit: float) -> None:
    """Until no trial of the study is running (other workers' included), at most ``limit``
    seconds: a trial whose worker died is marked FAILED by its missing heartbeat by then."""
    optuna = _optuna()
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        optuna.storages.fail_stale_trials(study)
        if not any(t.state == optuna.trial.TrialState.RUNNING for t in study.get_trials(deepcopy=False)):
            return
        time.sleep(0.2)


def search(
    build_fn: Callable[[dict], Experiment],
    space: dict,
    n_trials: int,
    storage=None,
    study_name: str = "minigrad",
    monitor: str = "val_accuracy",
    direction: str | None = None,
    seed: int | None = None,
    pruner=None,
    timeout: float | None = None,
    verbose: bool = False,
    trial_callbacks=(),
    heartbeat_interval: float = 30.0,
    grace_period: float | None = None,
    study_trials: int | None = None,
) -> SearchResult:
    """Runs ``n_trials`` trials and returns the best configuration.

    Each trial draws a ``config`` (``{name: value}``) from ``space``, seeds minigrad's generator
    with ``(seed or 0) + trial number`` (weights and shuffling are reproducible per trial), trains
    ``build_fn(config)`` with :class:`~minigrad.train.Trainer`, reporting ``monitor`` after every
    epoch for pruning (default pruner: median of earlier trials at the same epoch, after one
    epoch and five trials), and scores the trial with the best ``monitor`` of its epochs.
    ``direction``: "maximize"/"minimize", by default maximize for accuracies. A trial whose loss
    diverges is pruned. With ``storage`` (see the module docstring) the study named
    ``study_name`` is created or joined. ``seed`` seeds the sampler: with in-process storage the
    same seed gives the same trials. ``trial_callbacks``: ``fn(study, trial)`` after each trial.
    ``heartbeat_interval`` and ``grace_period`` (default: twice the interval), in seconds, apply to
    a storage URL: a trial without a heartbeat for ``grace_period`` is marked FAILED.
    Raises ValueError when the study ``study_name`` in ``storage`` has the other direction.
    ``study_trials``: a budget for the whole (shared) study instead of ``n_trials`` per process:
    each worker stops once the study holds that many trials, waits until no trial of the study is
    still running, and reports the study's best, so every worker reports the same result.
    """
    optuna = _optuna()
    if int(n_trials) != n_trials or n_trials < 1:
        raise ValueError(f"search: n_trials must be a positive integer, got {n_trials!r}")
    if study_trials is not None and (int(study_trials) != study_trials or study_trials < 1):
        raise ValueError(f"search: study_trials must be a positive integer, got {study_trials!r}")
    if not space:
        raise ValueError("search: the search space is empty")
    space = {name: _spec(name, spec) for name, spec in space.items()}
    direction = direction or ("maximize" if "acc" in monitor else "minimize")
    sampler = optuna.samplers.TPESampler(seed=seed)
    pruner = pruner if pruner is not None else optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
    worker = f"{socket.gethostname()}:{os.getpid()}"

    def objective(trial):
        if study_trials is not None and trial.number >= study_trials:  # workers raced past the budget
            trial.set_user_attr("over_budget", True)
            trial.study.stop()
            raise optuna.TrialPruned("the study already has its trials")
        config = {name: spec.suggest(trial, name) for name, spec in space.items()}
        trial.set_user_attr("worker", worker)
        manual_seed((seed or 0) + trial.number)
        experiment = build_fn(dict(config))
        trainer = Trainer(
            experiment.model,
            experiment.optimizer,
            experiment.loss_fn,
            scheduler=experiment.scheduler,
            callbacks=[*experiment.callbacks, _ReportToTrial(trial, monitor)],
            metrics=experiment.metrics,
            progress=False,
        )
        try:
            history = trainer.fit(experiment.train_loader, experiment.val_loader, experiment.epochs)
        except TrainingDiverged as error:
            trial.set_user_attr("diverged", str(error))
            raise optuna.TrialPruned(f"diverged: {error}") from None
        values = [v for v in history[monitor] if v is not None and not math.isnan(v)]
        return (max if direction == "maximize" else min)(values)

    previous = optuna.logging.get_verbosity()
    if not verbose:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        heartbeat = {"heartbeat_interval": heartbeat_interval, "grace_period": grace_period}
        study = _open_study(
            storage, heartbeat=heartbeat, sampler=sampler, pruner=pruner, study_name=study_name, direction=direction
        )
        # create_study(load_if_exists=True) joins an existing study whatever its direction
        if study.direction.name.lower() != direction:
            raise ValueError(
                f"search: study {study_name!r} in {storage} is to {study.direction.name.lower()}, "
                f"but this search would {direction} {monitor!r}: use another study name, or a "
                f"monitor and direction that match the study"
            )
        callbacks = list(trial_callbacks)
        if study_trials is not None:  # every trial counts, whoever runs it and however it ended
            callbacks.append(optuna.study.MaxTrialsCallback(int(study_trials), states=None))
        budget = None if study_trials is not None else int(n_trials)
        if study_trials is None or len(study.trials) < study_trials:
            study.optimize(objective, n_trials=budget, timeout=timeout, callbacks=callbacks)
        if study_trials is not None:
            _wait_for_running(study, heartbeat_interval + (grace_period or 2 * heartbeat_interval))
    finally:
        optuna.logging.set_verbosity(previous)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise RuntimeError(f"search: none of the {len(study.trials)} trials completed (all pruned or failed)")
    return SearchResult(dict(study.best_trial.params), float(study.best_value), study)
