"""Batch-norm 2d forward + backward (training mode, affine) on the ResNet-8 shapes: minigrad's
``batch_norm`` on the compiled kernels against ``torch.nn.functional.batch_norm`` with autograd.
One repetition: forward, then backward of a fixed upstream gradient into x, weight and bias."""

from __future__ import annotations

from bench.common import Workload

SHAPES = [(128, 16, 32, 32), (128, 64, 8, 8)]


def _arrays(shape):
    import numpy as np

    rng = np.random.default_rng(0)
    return (rng.standard_normal(shape).astype(np.float32), rng.standard_normal(shape).astype(np.float32))


def _minigrad(shape):
    def setup():
        import numpy as np

        import minigrad as mg
        import minigrad.nn.functional as F

        x_data, grad_data = _arrays(shape)
        channels = shape[1]
        x = mg.tensor(x_data, requires_grad=True)
        weight = mg.tensor(np.ones(channels, np.float32), requires_grad=True)
        bias = mg.tensor(np.zeros(channels, np.float32), requires_grad=True)
        running_mean, running_var = mg.zeros(channels), mg.ones(channels)
        grad = mg.tensor(grad_data)

        def step():
            x.grad = weight.grad = bias.grad = None
            F.batch_norm(x, running_mean, running_var, weight, bias, training=True).backward(grad)

        return step

    return setup


def _torch(shape):
    def setup():
        import torch
        import torch.nn.functional as F

        x_data, grad_data = _arrays(shape)
        channels = shape[1]
        x = torch.from_numpy(x_data).requires_grad_()
        weight = torch.ones(channels, requires_grad=True)
        bias = torch.zeros(channels, requires_grad=True)
        running_mean, running_var = torch.zeros(channels), torch.ones(channels)
        grad = torch.from_numpy(grad_data)

        def step():
            x.grad = weight.grad = bias.grad = None
            F.batch_norm(x, running_mean, running_var, weight, bias, training=True).backward(grad)

        return step

    return setup


def workloads() -> list[Workload]:
    out = []
    for shape in SHAPES:
        elements = 1
        for d in shape:
            elements *= d
        # The traffic no implementation can avoid: forward reads x and writes y, backward
        # reads x and dy and writes dx (five float32 tensors).
        out.append(
            Workload(
                name=f"batch_norm2d fwd+bwd {'x'.join(map(str, shape))}",
                group="batchnorm",
                setup_minigrad=_minigrad(shape),
                setup_torch=_torch(shape),
                bytes=5 * 4 * elements,
            )
        )
    return out
