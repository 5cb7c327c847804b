"""2-D convolution and pooling layers: thin shells over ``minigrad.nn.functional``'s
conv2d / max_pool2d / avg_pool2d / adaptive_avg_pool2d (which run the C++ kernels)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ... import _args
from .. import functional as F
from ..module import Module, Parameter
from .linear import reset_weight_and_bias

if TYPE_CHECKING:
    from ...tensor import Tensor


class Conv2d(Module):
    """Cross-correlation of (N, C_in, H, W) input with ``weight`` (C_out, C_in/groups, kh, kw)
    plus ``bias`` (C_out,):  y[n, o] = b[o] + sum_c sum_(i,j) W[o, c, i, j] x[n, c, s*h + d*i - p, s*w + d*j - p].
    Output size: floor((H + 2p - d (kh - 1) - 1) / s) + 1.
    Default init: see :func:`reset_weight_and_bias` (PyTorch's, fan_in = C_in/groups * kh * kw)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        groups: int = 1,
        bias: bool = True,
        dtype=np.float32,
    ):
        super().__init__()
        in_channels = _args.count(in_channels, "in_channels", "Conv2d")
        out_channels = _args.count(out_channels, "out_channels", "Conv2d")
        if groups < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(
                f"Conv2d: in_channels ({in_channels}) and out_channels ({out_channels}) "
                f"must both be divisible by groups ({groups})"
            )
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        # Parsed here so a bad value fails at construction; their ranges are the op's rule
        # (checked on the first forward, with the same errors as F.conv2d).
        self.kernel_size = _args.pair(kernel_size, "kernel_size", "Conv2d")
        self.stride = _args.pair(stride, "stride", "Conv2d")
        self.padding = _args.pair(padding, "padding", "Conv2d")
        self.dilation = _args.pair(dilation, "dilation", "Conv2d")
        shape = (out_channels, in_channels // groups) + self.kernel_size
        self.weight = Parameter(np.empty(shape, dtype=dtype))
        self.bias = Parameter(np.empty(out_channels, dtype=dtype)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        reset_weight_and_bias(self.weight, self.bias)

    def forward(self, x) -> Tensor:
        return self.forward_with_weight(x, self.weight)

    def forward_with_weight(self, x, weight) -> Tensor:
        """The layer with ``weight`` in place of its own (DropConnect and weight noise use it)."""
        return F.conv2d(x, weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def extra_repr(self) -> str:
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            text += f", padding={self.padding}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        return text + ("" if self.bias is not None else ", bias=False")


class MaxPool2d(Module):
    """y[n, c, h, w] = max of x over the kernel window at (h*s - p, w*s - p); stride defaults
    to the kernel size. The gradient goes to the position of each window's maximum."""

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding

    def forward(self, x) -> Tensor:
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool2d(MaxPool2d):
    """y[n, c, h, w] = mean of x over the kernel window; stride defaults to the kernel size.
    Padded zeros count in the mean (PyTorch's count_include_pad=True)."""

    def forward(self, x) -> Tensor:
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding)


class AdaptiveAvgPool2d(Module):
    """Averages each channel down to ``output_size`` (1: global average pooling, as in ResNet)."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, x) -> Tensor:
        return F.adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"
