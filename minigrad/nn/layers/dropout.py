"""Regularising layers that inject noise in training and step aside at test time: dropout
(units), channel dropout, DropConnect (weights) and additive Gaussian noise. Every random
draw comes from the global generator (``minigrad.manual_seed``)."""

from __future__ import annotations

from ...tensor import Tensor
from .. import functional as F
from ..module import Module
from .linear import Linear


class Dropout(Module):
    """Drops each unit with probability ``p`` in training (Srivastava et al., 2014).

    ``mode="inverted"`` (default, PyTorch's): kept units are scaled by 1/(1-p) during training,
    so eval is the identity. ``mode="scale_at_test"``: training keeps activations unscaled and
    eval multiplies by the keep probability 1-p (the paper's weight-scaling inference rule,
    for teaching; both give the same expected activation)."""

    def __init__(self, p: float = 0.5, mode: str = "inverted"):
        super().__init__()
        self.p, self.mode = F.check_dropout(p, mode, "Dropout"), mode

    def forward(self, x) -> Tensor:
        return F.dropout(x, self.p, self.training, self.mode)

    def extra_repr(self) -> str:
        return f"p={self.p}" + ("" if self.mode == "inverted" else f", mode={self.mode!r}")


class Dropout2d(Module):
    """Drops whole channels x[n, c] with probability ``p`` in training (inverted scaling)."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        self.p = F.check_dropout(p, who="Dropout2d")

    def forward(self, x) -> Tensor:
        return F.dropout2d(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class DropConnect(Module):
    """Wraps a Linear or Conv2d layer and drops each individual *weight* with probability
    ``p`` in training (Wan et al., 2013): y = layer(x; W * M / (1-p)), M ~ Bernoulli(1-p),
    a fresh mask every forward pass. The 1/(1-p) scaling keeps E[W * M / (1-p)] = W, so eval
    uses W unchanged (the simple mean-field inference rule; the paper's Gaussian
    moment-matching at test time is not implemented). Gradients flow to the kept weights."""

    def __init__(self, module: Module, p: float = 0.5):
        super().__init__()
        if not hasattr(module, "forward_with_weight"):
            raise TypeError(f"DropConnect wraps layers with a weight (Linear, Conv2d), not {type(module).__name__}")
        self.module, self.p = module, F.check_dropout(p, who="DropConnect")

    def forward(self, x) -> Tensor:
        weight = F.dropout(self.module.weight, self.p, self.training)
        return self.module.forward_with_weight(x, weight)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class DropConnectLinear(Linear):
    """A Linear layer with DropConnect on its weight matrix (see :class:`DropConnect`);
    same parameters and state_dict keys as ``Linear``."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, p: float = 0.5, **kwargs):
        p = F.check_dropout(p, who="DropConnectLinear")
        super().__init__(in_features, out_features, bias, **kwargs)
        self.p = p

    def forward(self, x) -> Tensor:
        return self.forward_with_weight(x, F.dropout(self.weight, self.p, self.training))

    def extra_repr(self) -> str:
        return super().extra_repr() + f", p={self.p}"


class GaussianNoise(Module):
    """y = x + N(0, std^2) noise in training, y = x in eval: noise injection on the input or
    on hidden units, which acts like a penalty on the network's sensitivity to its input."""

    def __init__(self, std: float = 0.1):
        super().__init__()
        if std < 0:
            raise ValueError(f"GaussianNoise std must be non-negative, got {std}")
        self.std = std

    def forward(self, x) -> Tensor:
        return F.gaussian_noise(x, self.std, self.training)

    def extra_repr(self) -> str:
        return f"std={self.std}"
