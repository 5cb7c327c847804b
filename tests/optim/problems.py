"""Small problems run side by side in minigrad and PyTorch from identical starting values."""

from __future__ import annotations

import contextlib

import numpy as np

import minigrad as mg
import minigrad.nn.functional as F

STEPS = 200


def least_squares_data(dtype, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((32, 6)).astype(dtype)
    y = (a @ rng.standard_normal(6) + 0.1 * rng.standard_normal(32)).astype(dtype)
    start = {"w": rng.standard_normal(6).astype(dtype), "b": np.asarray([0.5], dtype)}
    return (a, y), start


def mlp_data(dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((16, 10)).astype(dtype)
    y = rng.integers(0, 4, 16)
    start = {
        "w1": (rng.standard_normal((10, 8)) / np.sqrt(10)).astype(dtype),
        "b1": (0.1 * rng.standard_normal(8)).astype(dtype),
        "w2": (rng.standard_normal((8, 4)) / 3).astype(dtype),
        "b2": np.zeros(4, dtype),
    }
    return (x, y), start


def least_squares_loss(lib, data, p):
    a, y = data
    r = a @ p["w"] + p["b"] - y
    return (r * r).mean()


def mlp_loss(lib, data, p):
    x, y = data
    h = (x @ p["w1"] + p["b1"]).relu()
    logits = h @ p["w2"] + p["b2"]
    return (
        F.cross_entropy(logits, y) if lib == "minigrad" else __import__("torch").nn.functional.cross_entropy(logits, y)
    )


PROBLEMS = {
    "least_squares": (least_squares_data, least_squares_loss, [["w"], ["b"]]),
    "mlp": (mlp_data, mlp_loss, [["w1", "b1"], ["w2", "b2"]]),
}


@contextlib.contextmanager
def torch_default_dtype(torch, dtype):
    """NAdam keeps its momentum product in torch's default dtype: match the run's dtype."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64 if dtype == np.float64 else torch.float32)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def make_params(lib, start):
    if lib == "minigrad":
        return {k: mg.tensor(v, requires_grad=True) for k, v in start.items()}
    import torch

    return {k: torch.tensor(v, requires_grad=True) for k, v in start.items()}


def param_groups(params, names, overrides):
    """Group 0 uses the defaults, later groups add `overrides` (a list, one dict per group)."""
    groups = [{"params": [params[n] for n in names[0]]}]
    for extra, group_names in zip(overrides, names[1:]):
        groups.append(dict(extra, params=[params[n] for n in group_names]))
    return groups


def train(lib, problem, opt_cls, kwargs, overrides, dtype, steps=STEPS, data_seed=0):
    """Runs `steps` optimiser steps; returns the final parameters as numpy arrays."""
    make_data, loss_fn, names = PROBLEMS[problem]
    data, start = make_data(dtype, data_seed)
    if lib == "torch":
        import torch

        data = tuple(torch.tensor(d) for d in data)
    params = make_params(lib, start)
    opt = opt_cls(param_groups(params, names, overrides), **kwargs)
    for _ in range(steps):
        opt.zero_grad()
        loss_fn(lib, data, params).backward()
        opt.step()
    return {k: np.array(v.detach().numpy() if lib == "torch" else v.data) for k, v in params.items()}


def assert_params_close(ours, theirs, rtol):
    """Equal within `rtol` relative to each tensor's scale, at least 0.01: a parameter that
    trains towards zero (least squares' bias ends near 0.004) keeps float32 rounding noise of
    a few 1e-8 from the two libraries' different summation orders (seen on AVX-512 CPUs)."""
    for name in theirs:
        scale = max(1e-2, float(np.max(np.abs(theirs[name]))))
        err = float(np.max(np.abs(ours[name] - theirs[name])))
        assert err <= rtol * scale, f"{name}: max |ours - torch| = {err:.3g} > {rtol} * {scale:.3g}"
