"""Skip-connection blocks: ResNet's ``BasicBlock`` (He et al., 2016) and DenseNet's
``DenseBlock`` and ``Transition`` (Huang et al., 2017). Sub-module names follow torchvision's,
so checkpoints of the same architecture load key for key."""

from __future__ import annotations

from ...ops import concat
from ...tensor import Tensor
from ..module import Module, ModuleList, Sequential
from .conv import AvgPool2d, Conv2d
from .normalization import BatchNorm2d


class BasicBlock(Module):
    """y = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)), two 3x3 convolutions, the
    first with ``stride``. The shortcut is the identity when the shape is kept, else
    ``downsample`` = 1x1 Conv2d(stride, no bias) -> BatchNorm2d (the projection shortcut).
    The skip path lets the gradient reach early layers undiminished."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = BatchNorm2d(out_channels)
        self.conv2 = Conv2d(out_channels, out_channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = BatchNorm2d(out_channels)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = Sequential(
                Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), BatchNorm2d(out_channels)
            )

    def forward(self, x) -> Tensor:
        out = self.bn1(self.conv1(x), relu=True)
        shortcut = x if self.downsample is None else self.downsample(x)
        # relu(bn2(conv2(out)) + shortcut): the join fused into batch norm's pass
        return self.bn2(self.conv2(out), residual=shortcut, relu=True)


class DenseLayer(Module):
    """One DenseNet layer: BN -> ReLU -> Conv3x3(growth_rate), or with ``bottleneck`` = b the
    DenseNet-B form BN -> ReLU -> Conv1x1(b * growth_rate) -> BN -> ReLU -> Conv3x3(growth_rate).
    Returns only the ``growth_rate`` new channels; the block concatenates them."""

    def __init__(self, in_channels: int, growth_rate: int, bottleneck: int | None = None):
        super().__init__()
        width = in_channels
        if bottleneck:
            width = bottleneck * growth_rate
            self.norm0 = BatchNorm2d(in_channels)
            self.conv0 = Conv2d(in_channels, width, 1, bias=False)
        self.bottleneck = bottleneck
        self.norm = BatchNorm2d(width)
        self.conv = Conv2d(width, growth_rate, 3, padding=1, bias=False)

    def forward(self, x) -> Tensor:
        if self.bottleneck:
            x = self.conv0(self.norm0(x, relu=True))
        return self.conv(self.norm(x, relu=True))


class DenseBlock(Module):
    """``num_layers`` DenseLayers, each fed the concatenation of the block input and every
    earlier layer's output: x_l = [x_0, H_1(x_0), H_2([x_0, x_1]), ...]. The output has
    in_channels + num_layers * growth_rate channels (the growth rate k)."""

    def __init__(self, num_layers: int, in_channels: int, growth_rate: int, bottleneck: int | None = None):
        super().__init__()
        self.layers = ModuleList(
            DenseLayer(in_channels + i * growth_rate, growth_rate, bottleneck) for i in range(num_layers)
        )
        self.out_channels = in_channels + num_layers * growth_rate

    def forward(self, x) -> Tensor:
        for layer in self.layers:
            x = concat([x, layer(x)], axis=1)
        return x


class Transition(Module):
    """Between dense blocks: BN -> ReLU -> Conv1x1(out_channels) -> AvgPool2d(2), halving the
    spatial size and (with out_channels = theta * in_channels) compressing the channels."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.norm = BatchNorm2d(in_channels)
        self.conv = Conv2d(in_channels, out_channels, 1, bias=False)
        self.pool = AvgPool2d(2)

    def forward(self, x) -> Tensor:
        return self.pool(self.conv(self.norm(x, relu=True)))
