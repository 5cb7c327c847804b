"""Activation functions as modules (no parameters); each calls its functional form."""

from __future__ import annotations

from ...tensor import Tensor
from .. import functional as F
from ..module import Module


class ReLU(Module):
    """y = max(x, 0)."""

    def forward(self, x) -> Tensor:
        return F.relu(x)


class LeakyReLU(Module):
    """y = x if x > 0 else negative_slope * x."""

    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x) -> Tensor:
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class Sigmoid(Module):
    """y = 1 / (1 + e^-x)."""

    def forward(self, x) -> Tensor:
        return F.sigmoid(x)


class Tanh(Module):
    """y = tanh x."""

    def forward(self, x) -> Tensor:
        return F.tanh(x)


class Softmax(Module):
    """y_i = e^x_i / sum_j e^x_j along ``dim`` (default the last)."""

    def __init__(self, dim: int = -1):
        super().__init__()
        self.dim = dim

    def forward(self, x) -> Tensor:
        return F.softmax(x, dim=self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    """y_i = x_i - log sum_j e^x_j along ``dim`` (default the last); pair with ``nll_loss``."""

    def forward(self, x) -> Tensor:
        return F.log_softmax(x, dim=self.dim)
