"""Fully connected layer and the shape-only layers ``Flatten`` and ``Identity``."""

from __future__ import annotations

import math

import numpy as np

from ... import _args
from ...tensor import Tensor
from .. import functional as F
from .. import init
from ..module import Module, Parameter


def reset_weight_and_bias(weight, bias) -> None:
    """PyTorch's default init for Linear and Conv layers: W ~ kaiming_uniform_(a=sqrt(5)),
    i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    (Var(W) = 1 / (3 fan_in): a conservative scale; call ``init.kaiming_*`` for ReLU nets.)"""
    init.kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        bound = 1.0 / math.sqrt(init.calculate_fan_in_and_fan_out(weight)[0])
        init.uniform_(bias, -bound, bound)


class Linear(Module):
    """y = x W^T + b.  ``weight`` (out_features, in_features), ``bias`` (out_features,).
    Default init: see :func:`reset_weight_and_bias` (PyTorch's)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype=np.float32):
        super().__init__()
        in_features = _args.count(in_features, "in_features", "Linear")
        out_features = _args.count(out_features, "out_features", "Linear")
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(np.empty((out_features, in_features), dtype=dtype))
        self.bias = Parameter(np.empty(out_features, dtype=dtype)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        reset_weight_and_bias(self.weight, self.bias)

    def forward(self, x) -> Tensor:
        return self.forward_with_weight(x, self.weight)

    def forward_with_weight(self, x, weight) -> Tensor:
        """The layer with ``weight`` in place of its own (DropConnect and weight noise use it)."""
        return F.linear(x, weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Flatten(Module):
    """Merges dimensions ``start_dim``..``end_dim`` (by default all but the batch dimension)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x) -> Tensor:
        return F.flatten(x, self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Identity(Module):
    """Returns its input (a placeholder, e.g. a removed classifier head in transfer learning)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x) -> Tensor:
        return x
