"""Training checkpoints: model, optimiser, scheduler, epoch, random state and history in one
safetensors file written by :func:`minigrad.save` (atomic; no pickle, nothing executable).

safetensors holds named arrays only, so a checkpoint is split in two: every array of the
nested state (model weights, optimiser moments, ...) becomes a named tensor (``model/conv1.weight``,
``optimizer/state/0/exp_avg``), and the remaining structure (hyper-parameters, epoch, the random
generator's state, the history) is JSON, stored as the uint8 tensor ``checkpoint.json``. In the
JSON an array appears as ``{"__array__": name}``; tuples and dicts with non-string keys (the
optimiser's per-parameter state is keyed by integers) are tagged so they come back as they were.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..dtypes import array_of
from ..io import CorruptFileError
from ..random import get_rng_state, set_rng_state
from ..tensor import Tensor

if TYPE_CHECKING:  # annotations only
    import os

    from ..nn.module import Module
    from ..optim import Optimizer, SwitchOptimizer
    from ..optim.lr_scheduler import LRScheduler, ReduceLROnPlateau
    from .history import History

FORMAT = "minigrad-checkpoint-1"
STRUCTURE_KEY = "checkpoint.json"


def _child(name: str, key) -> str:
    return f"{name}/{key}" if name else str(key)


def _encode(value, name: str, arrays: dict):
    if isinstance(value, (Tensor, np.ndarray)):
        arrays[name] = np.asarray(array_of(value), order="C")  # (ascontiguousarray makes 0-d 1-d)
        return {"__array__": name, "tensor": isinstance(value, Tensor)}
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value) and "__array__" not in value and "__items__" not in value:
            return {k: _encode(v, _child(name, k), arrays) for k, v in value.items()}
        return {
            "__items__": [
                [_encode(k, _child(name, f"key{i}"), arrays), _encode(v, _child(name, k), arrays)]
                for i, (k, v) in enumerate(value.items())
            ]
        }
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, _child(name, i), arrays) for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(v, _child(name, i), arrays) for i, v in enumerate(value)]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(
        f"checkpoint: cannot store {type(value).__name__} at {name!r} (arrays, numbers, strings, "
        f"lists, tuples and dicts only)"
    )


class _Malformed(Exception):
    """A structure _encode never writes; load_checkpoint adds the file's path."""


def _decode(value, arrays: dict):
    if isinstance(value, list):
        return [_decode(v, arrays) for v in value]
    if not isinstance(value, dict):
        return value
    if "__array__" in value:
        name = value["__array__"]
        if not isinstance(name, str) or name not in arrays:
            raise _Malformed(f"the structure refers to array {name!r}, which the file does not hold")
        array = np.asarray(arrays[name])
        return Tensor(array.copy()) if value.get("tensor") else array.copy()
    if "__items__" in value:
        items = value["__items__"]
        if not isinstance(items, list) or not all(isinstance(i, list) and len(i) == 2 for i in items):
            raise _Malformed(f"__items__ must be a list of [key, value] pairs, found {items!r:.80}")
        decoded = {}
        for k, v in items:
            key, item = _decode(k, arrays), _decode(v, arrays)
            try:
                decoded[key] = item
            except TypeError:  # a list (or array) as a dict key
                raise _Malformed(
                    f"__items__ must be a list of [key, value] pairs with hashable keys, found key {key!r:.80}"
                ) from None
        return decoded
    if "__tuple__" in value:
        if not isinstance(value["__tuple__"], list):
            raise _Malformed(f"__tuple__ must be a list, found {value['__tuple__']!r:.80}")
        return tuple(_decode(v, arrays) for v in value["__tuple__"])
    return {k: _decode(v, arrays) for k, v in value.items()}


def save_checkpoint(
    path: str | os.PathLike,
    model: Module,
    optimizer: Optimizer | SwitchOptimizer | None = None,
    scheduler: LRScheduler | ReduceLROnPlateau | None = None,
    epoch: int = 0,
    history: History | None = None,
    extra: dict | None = None,
    callbacks: list | None = None,
) -> Path:
    """Writes everything needed to resume training after ``epoch`` epochs, including the global
    random generator's state (so the next epoch shuffles and drops out exactly as it would have).
    ``extra`` carries anything JSON-able or array-valued (e.g. the command line's model config);
    ``callbacks`` the callbacks' states (see :meth:`Trainer.save_checkpoint`)."""
    from .. import save

    state = {
        "format": FORMAT,
        "epoch": int(epoch),
        "rng_state": get_rng_state(),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "history": history.state_dict() if history is not None else None,
        "extra": extra or {},
        "callbacks": callbacks or [],
    }
    arrays: dict = {}
    structure = _encode(state, "", arrays)
    arrays[STRUCTURE_KEY] = np.frombuffer(json.dumps(structure).encode(), dtype=np.uint8).copy()
    save(arrays, path)
    return Path(path)


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Reads a checkpoint into a dict with ``model``, ``optimizer``, ``scheduler``, ``epoch``,
    ``rng_state``, ``history``, ``extra`` and ``callbacks`` (state dicts hold numpy arrays).

    A file that is not a valid checkpoint (not safetensors, no or unreadable ``checkpoint.json``,
    references to arrays it does not hold, another format, no epoch/model/random state) raises
    :class:`minigrad.io.CorruptFileError` (a ``ValueError``) naming the file and the problem."""
    from .. import load

    arrays = {name: np.asarray(array_of(a)) for name, a in load(path).items()}
    if STRUCTURE_KEY not in arrays:
        raise CorruptFileError(
            path,
            f"a safetensors file but not a minigrad training checkpoint (no "
            f"{STRUCTURE_KEY!r}); load plain model weights with minigrad.load",
        )
    try:
        structure = json.loads(arrays.pop(STRUCTURE_KEY).tobytes().decode("utf-8"))
    except UnicodeDecodeError as error:
        raise CorruptFileError(path, f"{STRUCTURE_KEY} is not UTF-8 text ({error})") from None
    except ValueError as error:
        raise CorruptFileError(path, f"{STRUCTURE_KEY} is not JSON ({error})") from None
    except RecursionError:
        raise CorruptFileError(path, f"{STRUCTURE_KEY} is nested too deeply") from None
    if not isinstance(structure, dict):
        raise CorruptFileError(path, f"{STRUCTURE_KEY} is not a JSON object but a {type(structure).__name__}")
    if structure.get("format") != FORMAT:
        raise CorruptFileError(path, f"unknown checkpoint format {structure.get('format')!r} (expected {FORMAT!r})")
    try:
        state = _decode(structure, arrays)
    except _Malformed as error:
        raise CorruptFileError(path, str(error)) from None
    except RecursionError:
        raise CorruptFileError(path, f"{STRUCTURE_KEY} is nested too deeply") from None
    for key, kind, what in (("epoch", int, "an integer"), ("model", dict, "a dict of arrays")):
        if key not in state:
            raise CorruptFileError(path, f"no {key!r} in the checkpoint")
        if not isinstance(state[key], kind) or isinstance(state[key], bool):
            raise CorruptFileError(path, f"{key!r} must be {what}, found {type(state[key]).__name__}")
    if state["epoch"] < 0:
        raise CorruptFileError(path, f"'epoch' must not be negative, found {state['epoch']}")
    if "rng_state" not in state:
        raise CorruptFileError(path, "no 'rng_state' in the checkpoint")
    for key, kind in (
        ("optimizer", dict),
        ("scheduler", dict),
        ("history", dict),
        ("extra", dict),
        ("callbacks", list),
    ):  # optional parts: absent, None, or of their own kind
        if state.get(key) is not None and not isinstance(state[key], kind):
            raise CorruptFileError(path, f"{key!r} must be a {kind.__name__}, found {type(state[key]).__name__}")
    state.setdefault("extra", {})
    return state


def restore_checkpoint(
    state: dict,
    model: Module,
    optimizer: Optimizer | SwitchOptimizer | None = None,
    scheduler: LRScheduler | ReduceLROnPlateau | None = None,
    restore_rng: bool = True,
) -> int:
    """Loads a checkpoint's states into the given objects; returns the epoch it was saved after."""
    model.load_state_dict(state["model"])
    for thing, key in ((optimizer, "optimizer"), (scheduler, "scheduler")):
        if thing is not None:
            if state[key] is None:
                raise ValueError(f"the checkpoint holds no {key} state to restore")
            thing.load_state_dict(state[key])
    if restore_rng:
        set_rng_state(state["rng_state"])
    return int(state["epoch"])
