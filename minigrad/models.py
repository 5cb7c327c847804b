"""Ready-made models: the benchmark architectures (see the exact definitions in the docs of
each builder) with PyTorch-compatible parameter names, so PyTorch checkpoints of the same
architecture load with ``load_state_dict(strict=True)``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import _args, nn
from .nn import functional as F
from .tensor import Tensor


def _hidden(layer, norm: str | None, dropout: float, spatial: bool) -> list:
    """A weight layer with what follows it in a hidden position: [norm] -> ReLU -> [Dropout]
    (dropout only after fully connected layers: neighbouring pixels of a feature map are too
    correlated for unit dropout to regularise)."""
    out = [layer]
    extra = nn.norm_layer(norm, layer.weight.shape[0], spatial)
    if extra is not None:
        out.append(extra)
    out.append(nn.ReLU())
    if dropout and not spatial:
        out.append(nn.Dropout(dropout))
    return out


def lenet5(
    num_classes: int = 10,
    in_channels: int = 1,
    image_size: int | tuple[int, int] = 28,
    norm: str | None = None,
    dropout: float = 0.0,
) -> nn.Sequential:
    """LeNet-5 with ReLU for (N, 1, 28, 28) input:
    Conv2d(1,6,5,padding=2) -> ReLU -> MaxPool2d(2) -> Conv2d(6,16,5) -> ReLU -> MaxPool2d(2)
    -> Flatten -> Linear(400,120) -> ReLU -> Linear(120,84) -> ReLU -> Linear(84,num_classes).
    A Sequential: keys 0.weight, 3.weight, 7.weight, 9.weight, 11.weight (and biases).

    ``in_channels`` and ``image_size`` (an int or (height, width), at least 16) adapt it to other
    images: the first Linear takes 16 * ((H/2 - 4) / 2) * ((W/2 - 4) / 2) features (576 for 32x32).
    ``norm`` (see :func:`minigrad.nn.norm_layer`) inserts a normalisation layer after every
    convolution and hidden Linear; ``dropout`` a Dropout after each hidden Linear's ReLU."""
    height, width = _args.pair(image_size, "image_size", "LeNet-5", minimum=1)
    if height < 16 or width < 16:  # two 2x2 poolings around a 5x5 convolution
        raise ValueError(f"LeNet-5 needs images of at least 16x16, got {height}x{width}")
    flat = 16 * ((height // 2 - 4) // 2) * ((width // 2 - 4) // 2)
    return nn.Sequential(
        *_hidden(nn.Conv2d(in_channels, 6, 5, padding=2), norm, 0.0, spatial=True),
        nn.MaxPool2d(2),
        *_hidden(nn.Conv2d(6, 16, 5), norm, 0.0, spatial=True),
        nn.MaxPool2d(2),
        nn.Flatten(),
        *_hidden(nn.Linear(flat, 120), norm, dropout, spatial=False),
        *_hidden(nn.Linear(120, 84), norm, dropout, spatial=False),
        nn.Linear(84, num_classes),
    )


def mlp(sizes: Sequence[int], batchnorm: bool = False, dropout: float = 0.0, norm: str | None = None) -> nn.Sequential:
    """Linear layers of the given widths, e.g. ``mlp([784, 512, 256, 10])``. After each hidden
    Linear: [norm] -> ReLU -> [Dropout(dropout)]; the last Linear gives the logits. ``norm`` is
    ``"batch"``, ``"layer"``, ``"group"`` or None (see :func:`minigrad.nn.norm_layer`);
    ``batchnorm=True`` is ``norm="batch"``.
    ``mlp([784, 512, 256, 10], batchnorm=True, dropout=0.5)`` is the benchmark MLP."""
    if len(sizes) < 2:
        raise ValueError(f"mlp needs at least an input and an output size, got {list(sizes)}")
    if batchnorm and norm not in (None, "batch"):
        raise ValueError(f"mlp: batchnorm=True and norm={norm!r} ask for two normalisations; give one")
    norm = "batch" if batchnorm else norm
    layers = []
    for fan_in, fan_out in zip(sizes[:-2], sizes[1:-1]):
        layers += _hidden(nn.Linear(fan_in, fan_out), norm, dropout, spatial=False)
    layers.append(nn.Linear(sizes[-2], sizes[-1]))
    return nn.Sequential(*layers)


class ResNet(nn.Module):
    """CIFAR-style ResNet for (N, 3, 32, 32) input (He et al., 2016, section 4.2):
    stem Conv2d(3, 16, 3, padding=1, bias=False) -> BatchNorm2d -> ReLU, then three stages
    ``layer1..layer3`` of ``blocks_per_stage`` BasicBlocks with 16, 32, 64 channels (the first
    block of stages 2 and 3 has stride 2 and a projection shortcut), global average pooling
    and ``fc`` = Linear(64, num_classes). Names as torchvision's ResNet."""

    def __init__(self, blocks_per_stage: int, num_classes: int = 10, widths: Sequence[int] = (16, 32, 64)):
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

    def forward(self, x: Tensor) -> Tensor:
        x = self.bn1(self.conv1(x), relu=True)
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(F.flatten(self.avgpool(x), 1))


def resnet8(num_classes: int = 10, in_channels: int = 3, norm: str | None = "batch", dropout: float = 0.0) -> ResNet:
    """ResNet-8: one BasicBlock per stage (1 + 3*2 convolutions + 1 linear = 8 layers).

    ``in_channels`` adapts the stem to other images (any size works: the pooling is global).
    ``norm`` other than ``"batch"`` replaces every BatchNorm2d by that normalisation (in a
    :class:`minigrad.nn.NormReLU`, which keeps the blocks' fused ``relu=`` calls; ``"none"``
    removes them); ``dropout`` puts a Dropout before the classifier (``fc`` becomes
    Sequential(Dropout, Linear))."""
    model = ResNet(1, num_classes)
    if in_channels != 3:
        model.conv1 = nn.Conv2d(in_channels, 16, 3, padding=1, bias=False)
    if norm != "batch":
        for parent in list(model.modules()):
            for name, child in list(parent.named_children()):
                if isinstance(child, nn.BatchNorm2d):
                    parent.set_submodule(name, nn.NormReLU(nn.norm_layer(norm, child.num_features, spatial=True)))
    if dropout:
        model.fc = nn.Sequential(nn.Dropout(dropout), nn.Linear(model.fc.in_features, num_classes))
    return model


def resnet20(num_classes: int = 10) -> ResNet:
    """ResNet-20: three BasicBlocks per stage (1 + 9*2 + 1 = 20 layers)."""
    return ResNet(3, num_classes)


MODELS = ("lenet5", "resnet8", "mlp")


def create(
    name: str, image_shape: tuple[int, int, int], num_classes: int = 10, norm: str | None = None, dropout: float = 0.0
) -> nn.Module:
    """The model called ``name`` (one of :data:`MODELS`) for images of ``image_shape``
    (C, H, W): LeNet-5 and ResNet-8 adapted to the channels and size, or Flatten -> mlp([C*H*W,
    512, 256, num_classes]). ``norm=None`` keeps each model's own (batch for ResNet-8, none
    otherwise)."""
    if np.ndim(image_shape) != 1 or len(image_shape) != 3:
        raise ValueError(f"models.create: image_shape must be (channels, height, width), got {image_shape!r}")
    channels, height, width = (_args.count(n, "image_shape", "models.create") for n in image_shape)
    if name == "lenet5":
        return lenet5(num_classes, channels, (height, width), norm, dropout)
    if name == "resnet8":
        return resnet8(num_classes, channels, norm or "batch", dropout)
    if name == "mlp":
        return nn.Sequential(
            nn.Flatten(), *mlp([channels * height * width, 512, 256, num_classes], norm=norm, dropout=dropout)
        )
    raise ValueError(f"unknown model {name!r}: choose one of {', '.join(MODELS)}")
