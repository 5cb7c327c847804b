"""Evaluation without training: losses and metrics over a loader, raw predictions, and
test-time augmentation (predictions averaged over flipped and shifted views)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from ..autograd import no_grad
from ..data.transforms import test_time_views
from ..dtypes import array_of
from ..tensor import Tensor
from .metrics import resolve

if TYPE_CHECKING:  # annotations only
    from collections.abc import Iterable, Mapping, Sequence
    from typing import Callable

    from ..nn.module import Module


@contextlib.contextmanager
def evaluation_mode(model: Module) -> Iterator[None]:
    """``model.eval()`` and no tape inside; the model's previous mode afterwards."""
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    try:
        with no_grad():
            yield
    finally:
        if was_training and hasattr(model, "train"):
            model.train()


def evaluate(
    model: Module,
    loader: Iterable,
    loss_fn: Callable[..., Tensor] | None = None,
    metrics: Sequence[str | Callable] | Mapping[str, Callable] | None = ("accuracy",),
) -> dict:
    """Mean ``loss`` (when ``loss_fn`` is given) and each metric over every sample of ``loader``
    (batch values weighted by batch size), in eval mode."""
    metrics = resolve(metrics)
    totals = dict.fromkeys((["loss"] if loss_fn is not None else []) + list(metrics), 0.0)
    count = 0
    with evaluation_mode(model):
        for x, y, *_ in loader:
            output = model(x)
            n = len(y)
            if loss_fn is not None:
                totals["loss"] += float(loss_fn(output, y).item()) * n
            for name, fn in metrics.items():
                totals[name] += fn(output.data, y.data) * n
            count += n
    if count == 0:
        raise ValueError("evaluate: the loader yielded no samples")
    return {name: total / count for name, total in totals.items()}


def _batches(data, batch_size: int):
    """Inputs from a loader (first field of each batch) or slices of one array/Tensor."""
    if isinstance(data, (np.ndarray, Tensor)):
        array = np.asarray(array_of(data))
        for start in range(0, len(array), batch_size):
            yield Tensor(array[start : start + batch_size])
    else:
        for batch in data:
            yield batch[0] if isinstance(batch, (tuple, list)) else batch


def predict(model: Module, data: np.ndarray | Tensor | Iterable, batch_size: int = 256) -> np.ndarray:
    """The model's outputs (N, ...) for every input of ``data`` (a loader, an array or a Tensor)."""
    with evaluation_mode(model):
        return np.concatenate([model(x).data for x in _batches(data, batch_size)])


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def predict_tta(
    model: Module, data: np.ndarray | Tensor | Iterable, flip: bool = True, shift: int = 0, batch_size: int = 256
) -> np.ndarray:
    """Test-time augmentation: class probabilities averaged over the views of
    :func:`~minigrad.data.transforms.test_time_views` (original, mirror, and with ``shift`` the
    four diagonal shifts: up to ten views, the multi-crop evaluation). Returns (N, classes)."""
    outputs = []
    with evaluation_mode(model):
        for x in _batches(data, batch_size):
            views = test_time_views(x.data, flip=flip, shift=shift)
            outputs.append(np.mean([_softmax(model(Tensor(v)).data) for v in views], axis=0))
    return np.concatenate(outputs)
