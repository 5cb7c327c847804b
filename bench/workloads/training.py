"""Full training steps (forward + cross-entropy + backward + optimiser step) of the five
benchmark models of anchors.md, minigrad against PyTorch with the same architecture,
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
def _minigrad_step(build_model, shape, batch, make_optimizer):
    def setup():
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
            F.cross_entropy(model(x), y).backward()
            optimizer.step()

        return step

    return setup


# ---------------------------------------------------------------------------- PyTorch side
def _torch_lenet5():
    from torch import nn

    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, CLASSES))


def _torch_mlp():
    from torch import nn

    return nn.Sequential(nn.Linear(784, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Dropout(0.5),
                         nn.Linear(512, 256), nn.BatchNorm1d(256), nn.ReLU(), nn.Dropout(0.5),
                         nn.Linear(256, CLASSES))


def _torch_resnet8():
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.downsample = None
            if stride != 1 or cin != cout:
                self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            out = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
            return torch.relu(out + (x if self.downsample is None else self.downsample(x)))

    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                         Block(16, 16, 1), Block(16, 32, 2), Block(32, 64, 2),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, CLASSES))


def _torch_step(build_model, shape, batch, make_optimizer):
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
            torch.nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()

        return step

    return setup


# ---------------------------------------------------------------------------- the five workloads
def _lenet5():
    from minigrad import models

    return models.lenet5()


def _mlp():
    from minigrad import models

    return models.mlp([784, 512, 256, CLASSES], batchnorm=True, dropout=0.5)


def _resnet8():
    from minigrad import models

    return models.resnet8()


# Each optimiser factory takes the library's optim module, so both sides get identical settings.
def sgd_momentum(optim, params): return optim.SGD(params, lr=0.01, momentum=0.9)
def sgd_nesterov(optim, params): return optim.SGD(params, lr=0.01, momentum=0.9, nesterov=True)
def adam(optim, params): return optim.Adam(params, lr=1e-3)
def rmsprop(optim, params): return optim.RMSprop(params, lr=1e-3)


CASES = [  # name, minigrad model, torch model, input shape, batch, optimiser
    ("lenet5_b64_sgd_momentum", _lenet5, _torch_lenet5, (1, 28, 28), 64, sgd_momentum),
    ("lenet5_b256_adam", _lenet5, _torch_lenet5, (1, 28, 28), 256, adam),
    ("mlp_bn_dropout_b128_rmsprop", _mlp, _torch_mlp, (784,), 128, rmsprop),
    ("resnet8_b128_sgd_nesterov", _resnet8, _torch_resnet8, (3, 32, 32), 128, sgd_nesterov),
    ("resnet8_b32_adam", _resnet8, _torch_resnet8, (3, 32, 32), 32, adam),
]


def workloads() -> list[Workload]:
    return [Workload(name=name, group="training_step",
                     setup_minigrad=_minigrad_step(ours, shape, batch, optimizer),
                     setup_torch=_torch_step(theirs, shape, batch, optimizer))
            for name, ours, theirs, shape, batch, optimizer in CASES]
