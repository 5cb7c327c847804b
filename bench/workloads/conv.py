"""conv2d forward + backward for every conv layer of LeNet-5 (batch 64 of 1x28x28) and of
ResNet-8 (batch 128 of 3x32x32), as ../shared/anchors.md defines them, and ResNet-8's 3x3
stride-1 layers at batch 32. `MINIGRAD_CONV_ALGO` (set in the shell) forces minigrad's
algorithm, e.g. to compare Winograd with the direct kernels. The first layer of each
network needs no input gradient (as in training); the others compute dX, dW (and db)."""

from __future__ import annotations

import numpy as np

from bench.common import Workload

# name, batch, c_in, c_out, input size, kernel, stride, padding, bias
LAYERS = [
    ("lenet5.conv1", 64, 1, 6, 28, 5, 1, 2, True),
    ("lenet5.conv2", 64, 6, 16, 14, 5, 1, 0, True),
    ("resnet8.stem", 128, 3, 16, 32, 3, 1, 1, False),
    ("resnet8.block1.conv", 128, 16, 16, 32, 3, 1, 1, False),
    ("resnet8.block2.conv1", 128, 16, 32, 32, 3, 2, 1, False),
    ("resnet8.block2.conv2", 128, 32, 32, 16, 3, 1, 1, False),
    ("resnet8.block2.shortcut", 128, 16, 32, 32, 1, 2, 0, False),
    ("resnet8.block3.conv1", 128, 32, 64, 16, 3, 2, 1, False),
    ("resnet8.block3.conv2", 128, 64, 64, 8, 3, 1, 1, False),
    ("resnet8.block3.shortcut", 128, 32, 64, 16, 1, 2, 0, False),
    # the 3x3 stride-1 layers at batch 32 too (ResNet-8 b32 Adam's step)
    ("resnet8_b32.block1.conv", 32, 16, 16, 32, 3, 1, 1, False),
    ("resnet8_b32.block2.conv2", 32, 32, 32, 16, 3, 1, 1, False),
    ("resnet8_b32.block3.conv2", 32, 64, 64, 8, 3, 1, 1, False),
]
FIRST_LAYERS = ("lenet5.conv1", "resnet8.stem")  # their input needs no gradient


def _arrays(batch, c_in, c_out, size, kernel, stride, padding, bias):
    rng = np.random.default_rng(0)
    out = (size + 2 * padding - kernel) // stride + 1
    return (
        rng.standard_normal((batch, c_in, size, size), dtype=np.float32),
        rng.standard_normal((c_out, c_in, kernel, kernel), dtype=np.float32) * 0.1,
        rng.standard_normal(c_out, dtype=np.float32) if bias else None,
        rng.standard_normal((batch, c_out, out, out), dtype=np.float32),
    )


def _setup_minigrad(layer):
    def setup():
        import minigrad as mg
        import minigrad.nn.functional as F

        name, batch, c_in, c_out, size, kernel, stride, padding, bias = layer
        x, w, b, gy = _arrays(*layer[1:])
        x = mg.tensor(x, requires_grad=name not in FIRST_LAYERS)
        w = mg.tensor(w, requires_grad=True)
        b = mg.tensor(b, requires_grad=True) if bias else None

        def step():
            F.conv2d(x, w, b, stride=stride, padding=padding).backward(gy)

        return step

    return setup


def _setup_torch(layer):
    def setup():
        import torch

        name, batch, c_in, c_out, size, kernel, stride, padding, bias = layer
        x, w, b, gy = (None if a is None else torch.from_numpy(a) for a in _arrays(*layer[1:]))
        x.requires_grad_(name not in FIRST_LAYERS)
        w.requires_grad_()
        if b is not None:
            b.requires_grad_()

        def step():
            torch.nn.functional.conv2d(x, w, b, stride=stride, padding=padding).backward(gy)

        return step

    return setup


def workloads() -> list[Workload]:
    result = []
    for layer in LAYERS:
        name, batch, c_in, c_out, size, kernel, stride, padding, bias = layer
        out = (size + 2 * padding - kernel) // stride + 1
        products = 2 if name in FIRST_LAYERS else 3  # forward, dW and (except first layers) dX
        flop = 2.0 * batch * c_out * c_in * kernel * kernel * out * out * products
        result.append(
            Workload(f"conv2d_fwd_bwd.{name}", "conv2d", _setup_minigrad(layer), _setup_torch(layer), flop=flop)
        )
    return result
