"""2x2 max-pool forward + backward on LeNet-5's two pooling inputs (batch 64)."""

from __future__ import annotations

import numpy as np

from bench.common import Workload

SHAPES = [("lenet5.pool1", (64, 6, 28, 28)), ("lenet5.pool2", (64, 16, 10, 10))]


def _arrays(shape):
    rng = np.random.default_rng(0)
    out = (*shape[:2], shape[2] // 2, shape[3] // 2)
    return rng.standard_normal(shape, dtype=np.float32), rng.standard_normal(out, dtype=np.float32)


def _setup_minigrad(shape):
    def setup():
        import minigrad as mg
        import minigrad.nn.functional as F

        x, gy = _arrays(shape)
        x = mg.tensor(x, requires_grad=True)

        def step():
            F.max_pool2d(x, 2).backward(gy)

        return step

    return setup


def _setup_torch(shape):
    def setup():
        import torch

        x, gy = (torch.from_numpy(a) for a in _arrays(shape))
        x.requires_grad_()

        def step():
            torch.nn.functional.max_pool2d(x, 2).backward(gy)

        return step

    return setup


def workloads() -> list[Workload]:
    # bytes moved: read x, write y and indices (forward); read dY and indices, write dX (backward)
    result = []
    for name, shape in SHAPES:
        n_in, n_out = int(np.prod(shape)), int(np.prod(shape)) // 4
        moved = 4 * n_in + 4 * n_out + 8 * n_out + 4 * n_out + 8 * n_out + 4 * n_in
        result.append(
            Workload(
                f"max_pool2d_fwd_bwd.{name}", "pool", _setup_minigrad(shape), _setup_torch(shape), bytes=float(moved)
            )
        )
    return result
