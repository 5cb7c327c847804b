"""Ready-made models: the benchmark architectures (see the exact definitions in the docs of
each builder) with PyTorch-compatible parameter names, so PyTorch checkpoints of the same
architecture load with ``load_state_dict(strict=True)``."""
from __future__ import annotations

from typing import Sequence

from . import nn
from .nn import functional as F


def lenet5(num_classes: int = 10) -> nn.Sequential:
    """LeNet-5 with ReLU for (N, 1, 28, 28) input:
    Conv2d(1,6,5,padding=2) -> ReLU -> MaxPool2d(2) -> Conv2d(6,16,5) -> ReLU -> MaxPool2d(2)
    -> Flatten -> Linear(400,120) -> ReLU -> Linear(120,84) -> ReLU -> Linear(84,num_classes).
    A Sequential: keys 0.weight, 3.weight, 7.weight, 9.weight, 11.weight (and biases)."""
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, num_classes))


def mlp(sizes: Sequence[int], batchnorm: bool = False, dropout: float = 0.0) -> nn.Sequential:
    """Linear layers of the given widths, e.g. ``mlp([784, 512, 256, 10])``. After each hidden
    Linear: [BatchNorm1d] -> ReLU -> [Dropout(dropout)]; the last Linear gives the logits.
    ``mlp([784, 512, 256, 10], batchnorm=True, dropout=0.5)`` is the benchmark MLP."""
    if len(sizes) < 2:
        raise ValueError(f"mlp needs at least an input and an output size, got {list(sizes)}")
    layers = []
    for fan_in, fan_out in zip(sizes[:-2], sizes[1:-1]):
        layers.append(nn.Linear(fan_in, fan_out))
        if batchnorm:
            layers.append(nn.BatchNorm1d(fan_out))
        layers.append(nn.ReLU())
        if dropout:
            layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(sizes[-2], sizes[-1]))
    return nn.Sequential(*layers)


class ResNet(nn.Module):
    """CIFAR-style ResNet for (N, 3, 32, 32) input (He et al., 2016, section 4.2):
    stem Conv2d(3, 16, 3, padding=1, bias=False) -> BatchNorm2d -> ReLU, then three stages
    ``layer1..layer3`` of ``blocks_per_stage`` BasicBlocks with 16, 32, 64 channels (the first
    block of stages 2 and 3 has stride 2 and a projection shortcut), global average pooling
    and ``fc`` = Linear(64, num_classes). Names as torchvision's ResNet."""

    def __init__(self, blocks_per_stage: int, num_classes: int = 10, widths=(16, 32, 64)):
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        in_channels, stages = widths[0], []
        for stage, width in enumerate(widths):
            blocks = []
            for index in range(blocks_per_stage):
                stride = 2 if stage > 0 and index == 0 else 1
                blocks.append(nn.BasicBlock(in_channels, width, stride))
                in_channels = width
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[-1], num_classes)

    def forward(self, x):
        x = self.bn1(self.conv1(x), relu=True)
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(F.flatten(self.avgpool(x), 1))


def resnet8(num_classes: int = 10) -> ResNet:
    """ResNet-8: one BasicBlock per stage (1 + 3*2 convolutions + 1 linear = 8 layers)."""
    return ResNet(1, num_classes)


def resnet20(num_classes: int = 10) -> ResNet:
    """ResNet-20: three BasicBlocks per stage (1 + 9*2 + 1 = 20 layers)."""
    return ResNet(3, num_classes)
