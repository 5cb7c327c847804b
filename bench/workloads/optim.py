"""Optimiser steps: 10M float32 parameters (one tensor, and ResNet-20's shapes repeated up to
10M), SGD-momentum / RMSProp / Adam, against torch.optim (fused=True where PyTorch has a fused
CPU kernel, else foreach=True); a memory-copy workload for the bandwidth limit; and the whole
optimiser step of LeNet-5 (62k parameters in 10 tensors).

Bytes counted per element: the arrays each update must read and write (float32), e.g. Adam
reads p, g, m, v and writes p, m, v: 7 x 4 bytes.
"""

from __future__ import annotations

import numpy as np

from bench.common import Workload

TEN_MILLION = 10_000_000


def _resnet20_shapes():
    """Parameter shapes of ResNet-20 (CIFAR): stem, 3 stages x 3 basic blocks, head."""
    shapes = [(16, 3, 3, 3), (16,), (16,)]
    c_in = 16
    for c in (16, 32, 64):
        for _block in range(3):
            shapes += [(c, c_in, 3, 3), (c,), (c,), (c, c, 3, 3), (c,), (c,)]
            if c != c_in:
                shapes += [(c, c_in, 1, 1), (c,), (c,)]
            c_in = c
    return shapes + [(10, 64), (10,)]


def _split_shapes():
    """ResNet-20's shapes repeated until they hold about 10M parameters."""
    one = _resnet20_shapes()
    per_copy = sum(int(np.prod(s)) for s in one)
    return one * max(1, round(TEN_MILLION / per_copy))


LENET5_SHAPES = [(6, 1, 5, 5), (6,), (16, 6, 5, 5), (16,), (120, 400), (120,), (84, 120), (84,), (10, 84), (10,)]

# optimiser name -> (minigrad kwargs, torch kwargs without fused/foreach, bytes per element)
OPTIMISERS = {
    "sgd_momentum": ("SGD", dict(lr=1e-6, momentum=0.9), 5 * 4),
    "rmsprop": ("RMSprop", dict(lr=1e-6), 5 * 4),
    "adam": ("Adam", dict(lr=1e-6), 7 * 4),
}


def _arrays(shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal(s).astype(np.float32), rng.standard_normal(s).astype(np.float32)) for s in shapes]


def _minigrad_step(opt_name, kwargs, shapes):
    def setup():
        import minigrad as mg

        params = []
        for value, grad in _arrays(shapes):
            p = mg.Tensor(value, requires_grad=True)
            p.grad = mg.Tensor(grad)
            params.append(p)
        opt = getattr(mg.optim, opt_name)(params, **kwargs)
        opt.step()  # creates the state
        return opt.step

    return setup


def _torch_step(opt_name, kwargs, shapes):
    def setup():
        import torch

        params = []
        for value, grad in _arrays(shapes):
            p = torch.tensor(value, requires_grad=True)
            p.grad = torch.tensor(grad)
            params.append(p)
        cls = getattr(torch.optim, opt_name)
        try:
            opt = cls(params, fused=True, **kwargs)
            opt.step()
        except (RuntimeError, TypeError, ValueError):
            opt = cls(params, foreach=True, **kwargs)
            opt.step()
        return opt.step

    return setup


def _copy_numpy():
    src = np.random.default_rng(0).standard_normal(TEN_MILLION).astype(np.float32)
    dst = np.empty_like(src)
    return lambda: np.copyto(dst, src)


def _copy_torch():
    import torch

    src = torch.randn(TEN_MILLION)
    dst = torch.empty_like(src)
    return lambda: dst.copy_(src)


def workloads() -> list[Workload]:
    out = [
        Workload(
            "memcpy 10M f32 (numpy copyto | torch copy_)", "optim", _copy_numpy, _copy_torch, bytes=2 * 4 * TEN_MILLION
        )
    ]
    layouts = {"1x10M": [(TEN_MILLION,)], "resnet20 shapes": _split_shapes()}
    for layout, shapes in layouts.items():
        n = sum(int(np.prod(s)) for s in shapes)
        for label, (opt_name, kwargs, per_elem) in OPTIMISERS.items():
            out.append(
                Workload(
                    f"{label} step, {layout} ({n / 1e6:.1f}M, {len(shapes)} tensors)",
                    "optim",
                    _minigrad_step(opt_name, kwargs, shapes),
                    _torch_step(opt_name, kwargs, shapes),
                    bytes=per_elem * n,
                )
            )
    n = sum(int(np.prod(s)) for s in LENET5_SHAPES)
    for label in ("sgd_momentum", "adam"):
        opt_name, kwargs, per_elem = OPTIMISERS[label]
        out.append(
            Workload(
                f"LeNet-5 {label} step ({n} params, 10 tensors)",
                "optim",
                _minigrad_step(opt_name, kwargs, LENET5_SHAPES),
                _torch_step(opt_name, kwargs, LENET5_SHAPES),
                bytes=per_elem * n,
            )
        )
    return out
