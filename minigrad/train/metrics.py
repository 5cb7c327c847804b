"""Classification metrics on model outputs (logits or probabilities) and integer targets.

Each takes Tensors or numpy arrays and returns plain numbers/arrays; none records on the tape.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import numpy as np

from ..dtypes import array_of

if TYPE_CHECKING:  # annotations only
    from collections.abc import Mapping, Sequence

    from numpy.typing import ArrayLike

    from ..tensor import Tensor


def _numpy(x) -> np.ndarray:
    """A Tensor's array, or x as an array (an ndarray's own ``.data`` is its raw buffer)."""
    return np.asarray(array_of(x))


def _check(output, target) -> tuple[np.ndarray, np.ndarray]:
    output, target = _numpy(output), _numpy(target)
    if output.ndim != 2 or target.shape != (output.shape[0],):
        raise ValueError(
            f"expected outputs (N, classes) and class-index targets (N,), got {output.shape} and {target.shape}"
        )
    return output, target


def accuracy(output: Tensor | ArrayLike, target: Tensor | ArrayLike) -> float:
    """Fraction of samples whose highest-scoring class is the target."""
    output, target = _check(output, target)
    return float((output.argmax(axis=1) == target).mean()) if len(target) else float("nan")


def top_k_accuracy(output: Tensor | ArrayLike, target: Tensor | ArrayLike, k: int = 5) -> float:
    """Fraction of samples whose target is among the ``k`` highest-scoring classes."""
    output, target = _check(output, target)
    if not 1 <= k <= output.shape[1]:
        raise ValueError(f"top_k_accuracy: k must be in 1..{output.shape[1]}, got {k}")
    top = np.argpartition(-output, k - 1, axis=1)[:, :k]
    return float((top == target[:, None]).any(axis=1).mean()) if len(target) else float("nan")


def confusion_matrix(
    predicted: Tensor | ArrayLike, target: Tensor | ArrayLike, num_classes: int | None = None
) -> np.ndarray:
    """``m[i, j]`` = number of samples of true class i predicted as class j.

    ``predicted`` is class indices (N,) or scores (N, classes), reduced by argmax.
    """
    predicted, target = _numpy(predicted), _numpy(target).astype(np.int64)
    if predicted.ndim == 2:
        num_classes = num_classes or predicted.shape[1]
        predicted = predicted.argmax(axis=1)
    predicted = predicted.astype(np.int64)
    if predicted.shape != target.shape:
        raise ValueError(f"confusion_matrix: {predicted.shape} predictions for {target.shape} targets")
    num_classes = num_classes or int(max(predicted.max(initial=-1), target.max(initial=-1)) + 1)
    if len(target) and (min(predicted.min(), target.min()) < 0 or max(predicted.max(), target.max()) >= num_classes):
        raise ValueError(f"confusion_matrix: class indices outside 0..{num_classes - 1}")
    return np.bincount(target * num_classes + predicted, minlength=num_classes**2).reshape(num_classes, num_classes)


BUILTIN = {"accuracy": accuracy, "top5": lambda o, t: top_k_accuracy(o, t, 5)}


def resolve(metrics: Sequence[str | Callable] | Mapping[str, Callable] | None) -> dict[str, Callable]:
    """Names (``"accuracy"``, ``"top5"``) or ``{name: fn(output, target) -> float}`` -> a dict."""
    if metrics is None:
        return {}
    if isinstance(metrics, dict):
        return dict(metrics)
    resolved = {}
    for metric in metrics:
        if isinstance(metric, str):
            if metric not in BUILTIN:
                raise ValueError(f"unknown metric {metric!r}; known: {', '.join(BUILTIN)} (or pass a callable)")
            resolved[metric] = BUILTIN[metric]
        else:
            resolved[getattr(metric, "__name__", "metric")] = metric
    return resolved
