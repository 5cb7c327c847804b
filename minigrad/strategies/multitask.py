"""Multi-task learning: one shared trunk, one head per task, trained on a combined loss.

The tasks share the trunk's features; each task's gradient shapes them, which acts as a
regulariser and lets a task with few labels profit from the others.

    model = MultiTaskModel(trunk, {"digit": nn.Linear(84, 10), "parity": nn.Linear(84, 2)})
    loss = MultiTaskLoss([Task("digit", F.cross_entropy, 1.0), Task("parity", F.cross_entropy, 0.5)])
    targets = loss.stack_targets(digit=y, parity=y % 2)            # (N, 2): one column per task
    fit(model, optim.Adam(model.parameters()), loss, DataLoader(TensorDataset(x, targets), 64),
        metrics=loss.metrics())            # History: train_digit_loss, val_parity_accuracy, ...

How the pieces fit the ordinary training loop: the model returns a :class:`TaskOutputs` (a dict
of one output per task), the targets of a batch are one array with a column per task, and the
loss and metrics pick their task's output and column. Nothing in the loop knows about tasks.

The combined loss is ``L = sum_t w_t L_t`` with fixed weights, or with
``uncertainty=True`` the homoscedastic-uncertainty weighting of Kendall, Gal and Cipolla (2018):
``L = sum_t exp(-s_t) L_t + s_t`` with one learned ``s_t = log sigma_t^2`` per task; a noisy
(hard) task learns a large ``s_t`` and is down-weighted, and the ``+ s_t`` term stops every
``s_t`` growing without bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .. import nn
from ..autograd import no_grad
from ..dtypes import array_of
from ..tensor import Tensor
from ..train.metrics import accuracy


class TaskOutputs(dict):
    """``{task name: output Tensor}``. ``.data`` gives the same dict of numpy arrays, which is
    what the training loop hands to metrics."""

    @property
    def data(self) -> dict:
        return {name: output.data for name, output in self.items()}


class MultiTaskModel(nn.Module):
    """``trunk`` computes shared features; ``heads[name]`` maps them to task ``name``'s output.
    ``forward(x)`` returns a :class:`TaskOutputs` with one entry per head."""

    def __init__(self, trunk: nn.Module, heads: dict):
        super().__init__()
        if not heads:
            raise ValueError("MultiTaskModel needs at least one head")
        self.trunk = trunk
        self.heads = nn.ModuleDict(heads)

    def forward(self, x) -> TaskOutputs:
        features = self.trunk(x)
        return TaskOutputs((name, head(features)) for name, head in self.heads.items())


@dataclass
class Task:
    """One task: its ``name`` (the head's), ``loss_fn(output, target)``, its fixed ``weight`` in the
    sum, whether its targets are class indices (``classification``; else float regression
    targets) and the ``metric`` reported per epoch (accuracy for classification by default)."""

    name: str
    loss_fn: Callable
    weight: float = 1.0
    classification: bool = True
    metric: Callable | None = None

    def __post_init__(self):
        if self.weight < 0:
            raise ValueError(f"task {self.name!r}: the weight must be non-negative, got {self.weight}")
        if self.metric is None and self.classification:
            self.metric = accuracy


class MultiTaskLoss(nn.Module):
    """``loss(outputs, targets)``: the weighted sum of the tasks' losses.

    ``outputs`` is a :class:`TaskOutputs`; ``targets`` is (N, T), column t holding task t's targets
    in the order of ``tasks`` (see :meth:`stack_targets`). After each call ``last_losses``
    holds each task's loss value. With ``uncertainty=True`` the weights are learned (see the module
    docstring): give the optimiser ``loss.parameters()`` too, and the fixed weights are ignored.
    """

    def __init__(self, tasks: list[Task], uncertainty: bool = False):
        super().__init__()
        names = [t.name for t in tasks]
        if not tasks or len(set(names)) != len(names):
            raise ValueError(f"MultiTaskLoss needs tasks with distinct names, got {names}")
        self.tasks = list(tasks)
        self.uncertainty = bool(uncertainty)
        if self.uncertainty:  # s_t = log sigma_t^2, starting at 0 (all weights 1)
            self.log_variance = nn.Parameter(np.zeros(len(tasks), dtype=np.float32))
        self.last_losses: dict[str, float] = {}

    def stack_targets(self, **targets) -> np.ndarray:
        """One (N, T) array with task t's targets in column t (float64: exact for class indices)."""
        missing = [t.name for t in self.tasks if t.name not in targets]
        unknown = [name for name in targets if name not in {t.name for t in self.tasks}]
        if missing or unknown:
            raise ValueError(f"stack_targets: missing targets for {missing}, unknown tasks {unknown}")
        columns = [np.asarray(getattr(targets[t.name], "data", targets[t.name]), dtype=np.float64) for t in self.tasks]
        lengths = {len(c) for c in columns}
        if len(lengths) != 1 or any(c.ndim != 1 for c in columns):
            raise ValueError(
                f"stack_targets: every task needs a 1-D target of the same length, got shapes "
                f"{[c.shape for c in columns]}"
            )
        return np.stack(columns, axis=1)

    def task_target(self, targets, index: int) -> Tensor:
        """Column ``index`` of the targets, as class indices (int64) or float regression targets
        in the dtype of the task's output."""
        column = np.asarray(array_of(targets))[:, index]
        if self.tasks[index].classification:
            return Tensor(column.astype(np.int64))
        return Tensor(column.astype(np.float32))

    def task_losses(self, outputs: TaskOutputs, targets) -> dict[str, Tensor]:
        """Each task's unweighted loss, as a Tensor on the tape."""
        if not isinstance(outputs, dict):
            raise TypeError(
                f"MultiTaskLoss expects the dict of task outputs a MultiTaskModel returns, got {type(outputs).__name__}"
            )
        shape = np.shape(array_of(targets))
        if len(shape) != 2 or shape[1] != len(self.tasks):
            raise ValueError(
                f"MultiTaskLoss: targets must be (N, {len(self.tasks)}), one column per task "
                f"({', '.join(t.name for t in self.tasks)}), got shape {shape}"
            )
        losses = {}
        for index, task in enumerate(self.tasks):
            if task.name not in outputs:
                raise KeyError(f"the model has no output for task {task.name!r} (outputs: {', '.join(outputs)})")
            output = outputs[task.name]
            target = self.task_target(targets, index)
            if not task.classification and target.dtype != output.dtype:
                target = Tensor(target.data.astype(output.dtype))
            if not task.classification and output.ndim == 2 and output.shape[1] == 1:
                output = output.reshape(-1)
            losses[task.name] = task.loss_fn(output, target)
        return losses

    def forward(self, outputs: TaskOutputs, targets) -> Tensor:
        """L = sum_t w_t L_t, or sum_t exp(-s_t) L_t + s_t with ``uncertainty``."""
        losses = self.task_losses(outputs, targets)
        self.last_losses = {name: float(loss.item()) for name, loss in losses.items()}
        total = None
        for index, task in enumerate(self.tasks):
            if self.uncertainty:
                s = self.log_variance[index]
                term = (-s).exp() * losses[task.name] + s
            else:
                term = losses[task.name] * task.weight
            total = term if total is None else total + term
        return total

    def weights(self) -> dict[str, float]:
        """The weight each task's loss currently has in the sum (exp(-s_t) when learned)."""
        if self.uncertainty:
            return {t.name: float(np.exp(-s)) for t, s in zip(self.tasks, self.log_variance.data)}
        return {t.name: t.weight for t in self.tasks}

    def metrics(self) -> dict[str, Callable]:
        """Metrics for ``fit``/``evaluate``: ``<task>_loss`` for every task and ``<task>_<metric>``
        for tasks with a metric, so the History gets per-task columns (``val_digit_accuracy``)."""
        found = {}
        for index, task in enumerate(self.tasks):
            found[f"{task.name}_loss"] = self._loss_metric(index)
            if task.metric is not None:
                found[f"{task.name}_{getattr(task.metric, '__name__', 'metric')}"] = self._task_metric(index)
        return found

    def _loss_metric(self, index):
        task = self.tasks[index]

        def task_loss(output: dict, target) -> float:
            with no_grad():
                one = TaskOutputs({task.name: Tensor(output[task.name])})
                return float(MultiTaskLoss([task]).task_losses(one, np.asarray(target)[:, [index]])[task.name].item())

        return task_loss

    def _task_metric(self, index):
        task = self.tasks[index]

        def metric(output: dict, target) -> float:
            return task.metric(output[task.name], self.task_target(target, index).data)

        return metric
