"""``Optimizer``: parameter groups, per-parameter state, ``step``, ``zero_grad`` and state dicts,
behaving like ``torch.optim.Optimizer``.

A subclass says how one parameter group is updated (``_update``): it gathers the group's
parameter arrays, their gradients and its state arrays into lists and makes ONE call into the
fused C++ kernels (``minigrad._C.*_step``), which walk every tensor of the list inside a single
OpenMP region, in place. Parameters are never copied or moved: ``p.data`` stays the array the
layers hold, ``p.grad`` stays the Tensor the tape made. Nothing here imports PyTorch.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable
from typing import Callable

import numpy as np

from ..autograd import enable_grad, no_grad
from ..dtypes import array_of
from ..tensor import Tensor


class _Required:
    """Marks a hyper-parameter without default (``lr`` of SGD)."""

    def __repr__(self):
        return "<required parameter>"


required = _Required()


class Optimizer:
    """Base class. ``params`` is an iterable of Tensors or of dicts (parameter groups), each
    dict holding ``"params"`` and any hyper-parameters that override ``defaults`` for that
    group. ``self.state[p]`` holds the per-parameter buffers, created on the first step."""

    def __init__(self, params: Iterable[Tensor] | Iterable[dict], defaults: dict):
        self.defaults = dict(defaults)
        self.state: dict = {}
        self.param_groups: list[dict] = []
        if isinstance(params, Tensor):
            raise TypeError("params must be an iterable of Tensors or dicts, not a single Tensor")
        if isinstance(params, set):
            raise TypeError(
                "parameters must be an ordered collection (list or tuple), not a set: "
                "the order has to be the same from run to run for state dicts"
            )
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    # ------------------------------------------------------------------- parameter groups
    def add_param_group(self, param_group: dict) -> None:
        """Adds a group; hyper-parameters it does not name take the optimiser's defaults."""
        if not isinstance(param_group, dict):
            raise TypeError(f"a parameter group must be a dict, got {type(param_group).__name__}")
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError(
                "parameters must be an ordered collection (list or tuple), not a set: "
                "the order has to be the same from run to run for state dicts"
            )
        params = list(params)
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, got {type(p).__name__}")
            if p.dtype.type not in (np.float32, np.float64):
                raise TypeError(f"optimizer can only optimize float32/float64 Tensors, got {p.dtype}")
            if not p.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor (it is the output of an op)")
        if len({id(p) for p in params}) != len(params):
            raise ValueError("a parameter group contains the same parameter more than once")
        group = dict(param_group, params=params)
        for name, default in self.defaults.items():
            if default is required and name not in group:
                raise ValueError(f"parameter group didn't specify a value of required optimization parameter {name}")
            group.setdefault(name, default)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError("some parameters appear in more than one parameter group")
        self._check_hyperparameters(group)
        self.param_groups.append(group)

    def _check_hyperparameters(self, group: dict) -> None:
        """Subclasses raise ValueError for invalid values (negative lr, betas outside [0, 1)...),
        each through :func:`check_range`."""
        if group["lr"] is not required:
            check_range("learning rate", group["lr"])

    # ------------------------------------------------------------------------------ steps
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forgets every parameter's gradient (``None``), or zeroes it in place."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.data.fill(0)
                    p.grad.mark_modified()

    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor | None:
        """One update of every parameter that has a gradient. ``closure`` re-evaluates the
        model and returns the loss (run with gradients enabled); its value is returned."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with no_grad():
            for group in self.param_groups:
                params = [p for p in group["params"] if p.grad is not None]
                if not params:
                    continue
                for bucket in _buckets(params, self._bucket_key):
                    self._update(group, bucket)
                for p in params:
                    p.mark_modified()  # the tape refuses stale saved copies of p
        return loss

    def _bucket_key(self, p: Tensor):
        """Parameters of one group share one kernel call when they share this key (dtype, and
        whatever per-parameter scalar the update needs, like the step count)."""
        return p.data.dtype

    def _update(self, group: dict, params: list[Tensor]) -> None:  # pragma: no cover
        raise NotImplementedError

    def _state_arrays(self, params, name: str, fill: float = 0.0) -> list[np.ndarray]:
        """The state buffer `name` of each parameter, created (filled with `fill`) if missing."""
        arrays = []
        for p in params:
            state = self.state.setdefault(p, {})
            buf = state.get(name)
            if buf is None:
                buf = state[name] = np.full_like(p.data, fill)
            arrays.append(buf)
        return arrays

    # ------------------------------------------------------------------------- state dict
    def state_dict(self) -> dict:
        """``{"state": {index: {name: value}}, "param_groups": [...]}`` with parameters
        referred to by their position across all groups; arrays are copies."""
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = [index.setdefault(id(p), len(index)) for p in group["params"]]
            groups.append(packed)
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                if p in self.state:
                    state[index[id(p)]] = {
                        k: v.copy() if isinstance(v, np.ndarray) else v for k, v in self.state[p].items()
                    }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restores hyper-parameters and state saved by ``state_dict`` (of an optimiser built
        the same way); every array is checked against its parameter's shape first."""
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"loaded state dict has {len(saved_groups)} parameter groups, "
                f"this optimizer has {len(self.param_groups)}"
            )
        by_index = {}
        for i, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            if len(group["params"]) != len(saved["params"]):
                raise ValueError(
                    f"parameter group {i} has {len(group['params'])} parameters but "
                    f"the loaded state dict has {len(saved['params'])}"
                )
            by_index.update(zip(saved["params"], group["params"]))
        new_state = {}
        for key, saved in state_dict["state"].items():
            if key not in by_index:
                raise ValueError(f"loaded state refers to parameter {key}, which no group has")
            p = by_index[key]
            entry = {}
            for name, value in saved.items():
                if isinstance(value, np.ndarray) or isinstance(value, Tensor):
                    value = np.asarray(array_of(value))
                    if value.shape != p.shape:
                        raise ValueError(
                            f"loaded state '{name}' of parameter {key} has shape "
                            f"{value.shape}, but the parameter has shape {p.shape}"
                        )
                    value = np.array(value, dtype=p.dtype, order="C", copy=True)
                else:
                    value = copy.deepcopy(value)
                entry[name] = value
            new_state[p] = entry
        restored = [
            {**group, **{k: copy.deepcopy(v) for k, v in saved.items() if k != "params"}}
            for group, saved in zip(self.param_groups, saved_groups)
        ]
        for group in restored:  # a checkpoint is input like any other: nothing changes if it is bad
            self._check_hyperparameters(group)
        self.state = new_state
        for group, checked in zip(self.param_groups, restored):
            group.update(checked)

    def __repr__(self):
        lines = [type(self).__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params"]
        return "\n".join(lines + [")"])


def _buckets(params: list[Tensor], key) -> Iterable[list[Tensor]]:
    """Splits `params` by key(p), keeping order; almost always one bucket."""
    first = key(params[0])
    if all(key(p) == first for p in params):
        return [params]
    buckets: dict = {}
    for p in params:
        buckets.setdefault(key(p), []).append(p)
    return list(buckets.values())


def _grads(params: list[Tensor]) -> list[np.ndarray]:
    return [p.grad.data for p in params]


def _datas(params: list[Tensor]) -> list[np.ndarray]:
    return [p.data for p in params]


def check_range(
    name: str, value: float, low: float = 0.0, high: float | None = None, low_open: bool = False, high_open: bool = True
) -> None:
    """Raises ValueError naming ``name`` and the value unless low <= value (< or <=) high. The one
    check of every optimiser hyper-parameter (and of the rates schedulers set): NaN and infinities
    are refused too, as no update can use them."""
    value = float(value)
    bad_low = value <= low if low_open else value < low
    bad_high = high is not None and (value >= high if high_open else value > high)
    if bad_low or bad_high or not math.isfinite(value):
        interval = f"{'(' if low_open else '['}{low}, {'inf' if high is None else high}{')' if high_open or high is None else ']'}"
        raise ValueError(f"Invalid {name}: {value} (must lie in {interval})")
