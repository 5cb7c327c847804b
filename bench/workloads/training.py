"""Full training steps (forward + cross-entropy + backward + optimiser step) of the five
benchmark models of anchors.md and ResNet-20 (batch 128 of CIFAR-shaped 3x32x32, SGD with
Nesterov momentum), minigrad against PyTorch with the same architecture,
batch, optimiser and hyper-parameters. Inputs are standard normal, targets uniform classes."""

from __future__ import annotations

import numpy as np

from bench.common import Workload

CLASSES = 10


def _data(batch, shape, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch,) + shape).astype(np.float32)
    y = rng.integers(0, CLASSES, batch).astype(np.int64)
    return x, y


# ---------------------------------------------------------------------------- minigrad side
def minigrad_training(build_model, shape, batch, make_optimizer, precision="fp32"):
    """(model, step) from seed 0; step() runs one training step and returns its loss tensor
    (forward and loss under bfloat16 autocast with precision="bf16")."""
    import minigrad as mg
    from minigrad.nn import functional as F

    mg.manual_seed(0)
    model = build_model()
    model.train()
    optimizer = make_optimizer(mg.optim, model.parameters())
    x_np, y_np = _data(batch, shape)
    x, y = mg.tensor(x_np), mg.tensor(y_np)

    def step():
        optimizer.zero_grad()
        with mg.autocast("cpu", dtype=mg.bfloat16, enabled=precision == "bf16"):
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        return loss

    return model, step


def _minigrad_step(build_model, shape, batch, make_optimizer, precision="fp32"):
    def setup():
        return minigrad_training(build_model, shape, batch, make_optimizer, precision)[1]

    return setup


# ---------------------------------------------------------------------------- PyTorch side
def _torch_twins():
    """The PyTorch twins the parity tests use (tests/torch_twins.py), so both compare the same models."""
    import sys
    from pathlib import Path

    tests = str(Path(__file__).resolve().parents[2] / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    import torch_twins

    return torch_twins


def _torch_lenet5():
    return _torch_twins().lenet5()


def _torch_mlp():
    return _torch_twins().mlp([784, 512, 256, CLASSES], batchnorm=True, dropout=0.5)


def _torch_resnet8():
    return _torch_twins().resnet8()


def _torch_resnet20():
    return _torch_twins().resnet20()


def _torch_step(build_model, shape, batch, make_optimizer, precision="fp32"):
    def setup():
        import torch

        torch.manual_seed(0)
        model = build_model()
        model.train()
        optimizer = make_optimizer(torch.optim, model.parameters())
        x_np, y_np = _data(batch, shape)
        x, y = torch.from_numpy(x_np), torch.from_numpy(y_np)

        def step():
            optimizer.zero_grad()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()

        return step

    return setup


# --------------------------------------------------------------------------------- the models
def _lenet5():
    from minigrad import models

    return models.lenet5()


def _mlp():
    from minigrad import models

    return models.mlp([784, 512, 256, CLASSES], batchnorm=True, dropout=0.5)


def _resnet8():
    from minigrad import models

    return models.resnet8()


def _resnet20():
    from minigrad import models

    return models.resnet20()


# Each optimiser factory takes the library's optim module, so both sides get identical settings.
def sgd_momentum(optim, params):
    return optim.SGD(params, lr=0.01, momentum=0.9)


def sgd_nesterov(optim, params):
    return optim.SGD(params, lr=0.01, momentum=0.9, nesterov=True)


def adam(optim, params):
    return optim.Adam(params, lr=1e-3)


def rmsprop(optim, params):
    return optim.RMSprop(params, lr=1e-3)


CASES = [  # name, minigrad model, torch model, input shape, batch, optimiser
    ("lenet5_b64_sgd_momentum", _lenet5, _torch_lenet5, (1, 28, 28), 64, sgd_momentum),
    ("lenet5_b256_adam", _lenet5, _torch_lenet5, (1, 28, 28), 256, adam),
    ("mlp_bn_dropout_b128_rmsprop", _mlp, _torch_mlp, (784,), 128, rmsprop),
    ("resnet8_b128_sgd_nesterov", _resnet8, _torch_resnet8, (3, 32, 32), 128, sgd_nesterov),
    ("resnet8_b32_adam", _resnet8, _torch_resnet8, (3, 32, 32), 32, adam),
    ("resnet20_b128_sgd_nesterov", _resnet20, _torch_resnet20, (3, 32, 32), 128, sgd_nesterov),
]


# Mixed precision (issue: bfloat16 autocast): the float32 step and the autocast step of each, on
# both sides (PyTorch under torch.autocast("cpu", dtype=torch.bfloat16)).
AUTOCAST_CASES = [
    ("resnet8_b128_sgd_nesterov", _resnet8, _torch_resnet8, (3, 32, 32), 128, sgd_nesterov),
    ("resnet20_b128_sgd_nesterov", _resnet20, _torch_resnet20, (3, 32, 32), 128, sgd_nesterov),
]


def workloads() -> list[Workload]:
    steps = [
        Workload(
            name=name,
            group="training_step",
            setup_minigrad=_minigrad_step(ours, shape, batch, optimizer),
            setup_torch=_torch_step(theirs, shape, batch, optimizer),
        )
        for name, ours, theirs, shape, batch, optimizer in CASES
    ]
    mixed = [
        Workload(
            name=f"{name}_{precision}",
            group="autocast",
            setup_minigrad=_minigrad_step(ours, shape, batch, optimizer, precision),
            setup_torch=_torch_step(theirs, shape, batch, optimizer, precision),
        )
        for name, ours, theirs, shape, batch, optimizer in AUTOCAST_CASES
        for precision in ("fp32", "bf16")
    ]
    return steps + mixed
