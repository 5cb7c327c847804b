"""Weight initialisers. Each fills a tensor in place (trailing ``_``) with samples from the
global generator (``minigrad.manual_seed`` makes them reproducible) and returns it.

Why initialisation matters: in a deep stack each layer multiplies the activation variance
by about fan_in * Var(W) (times a factor for the nonlinearity). Too small a variance (the
"small random" N(0, 0.01^2)) makes signals and gradients vanish layer by layer; too large
(N(0, 1)) makes them explode or saturate. The schemes below choose Var(W) so the product
stays near 1:

* Xavier/Glorot (Glorot & Bengio, 2010), for tanh/linear units:  Var(W) = gain^2 * 2 / (fan_in + fan_out)
* Kaiming/He (He et al., 2015), for ReLU:                        Var(W) = gain^2 / fan,   gain^2 = 2
  with fan = fan_in (keeps forward activations), fan_out (keeps backward gradients), or
  fan_avg = (fan_in + fan_out) / 2, giving the lecture's Var(W) = 4 / (fan_in + fan_out).

A uniform U(-a, a) has variance a^2 / 3, so the uniform variants use a = sqrt(3) * std.
"""

from __future__ import annotations

import math

import numpy as np

from ..autograd import no_grad
from ..random import generator
from ..tensor import Tensor
from .module import Module


def _fill(tensor, values):
    """Writes ``values`` into ``tensor`` in place (bumping its version, outside the tape)."""
    with no_grad():
        tensor.copy_(values)
    return tensor


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The factor by which a nonlinearity scales the standard deviation to restore:
    linear/conv/sigmoid 1, tanh 5/3, relu sqrt(2), leaky_relu sqrt(2 / (1 + a^2)) with
    negative slope a (default 0.01), selu 3/4."""
    if nonlinearity in ("linear", "identity", "sigmoid") or nonlinearity.startswith("conv"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1.0 + slope * slope))
    if nonlinearity == "selu":
        return 0.75
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    """Fans of a weight in PyTorch's layouts: Linear (out, in) and Conv (out, in/groups, kh, kw).
    fan_in = in * kh * kw (inputs feeding one output), fan_out = out * kh * kw."""
    shape = tensor.shape
    if len(shape) < 2:
        raise ValueError(f"fan in and fan out need a weight of at least 2 dimensions, got shape {shape}")
    receptive_field = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive_field, shape[0] * receptive_field


def _fan(tensor, mode: str) -> float:
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    fans = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}
    if mode not in fans:
        raise ValueError(f"mode must be 'fan_in', 'fan_out' or 'fan_avg', got {mode!r}")
    return fans[mode]


# ---------------------------------------------------------------------------- plain fills
def zeros_(tensor: Tensor) -> Tensor:
    return _fill(tensor, 0.0)


def ones_(tensor: Tensor) -> Tensor:
    return _fill(tensor, 1.0)


def constant_(tensor: Tensor, value: float) -> Tensor:
    return _fill(tensor, value)


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
    """N(mean, std^2) samples, e.g. std=0.01 ("small random") or std=1."""
    return _fill(tensor, generator().normal(mean, std, tensor.shape))


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0) -> Tensor:
    """U(a, b) samples."""
    return _fill(tensor, generator().uniform(a, b, tensor.shape))


# ---------------------------------------------------------------------------- variance scaling
def xavier_uniform_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    """U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)), so Var = gain^2 * 2 / (fan_in + fan_out)."""
    std = gain * math.sqrt(2.0 / sum(calculate_fan_in_and_fan_out(tensor)))
    return uniform_(tensor, -math.sqrt(3.0) * std, math.sqrt(3.0) * std)


def xavier_normal_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    """N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / sum(calculate_fan_in_and_fan_out(tensor))))


def kaiming_uniform_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu") -> Tensor:
    """U(-b, b) with b = sqrt(3) * gain / sqrt(fan), gain = calculate_gain(nonlinearity, a).
    With the defaults (leaky_relu, a=0) gain^2 = 2: Var = 2 / fan_in.
    ``mode="fan_avg"`` gives Var = 4 / (fan_in + fan_out).
    (PyTorch's default Linear/Conv init is this with a = sqrt(5): b = 1 / sqrt(fan_in).)"""
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    return uniform_(tensor, -math.sqrt(3.0) * std, math.sqrt(3.0) * std)


def kaiming_normal_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu") -> Tensor:
    """N(0, std^2) with std = gain / sqrt(fan); with the defaults Var = 2 / fan_in."""
    return normal_(tensor, 0.0, calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode)))


# The lecture calls the Kaiming schemes "He initialisation".
he_uniform_ = kaiming_uniform_
he_normal_ = kaiming_normal_


INIT_SCHEMES = ("default", "xavier", "he", "normal")


def apply(model: Module, scheme: str) -> Module:
    """Initialises every Conv2d and Linear weight of ``model`` by one of the lecture's schemes
    and zeroes their biases: ``"xavier"`` Glorot uniform (Var = 2 / (fan_in + fan_out)),
    ``"he"`` Kaiming normal for ReLU (Var = 2 / fan_in), ``"normal"`` the small random
    N(0, 0.01^2); ``"default"`` keeps each layer's own initialisation. Returns ``model``."""
    from .layers import Conv2d, Linear

    schemes = {
        "xavier": xavier_uniform_,
        "he": lambda w: kaiming_normal_(w, nonlinearity="relu"),
        "normal": lambda w: normal_(w, 0.0, 0.01),
    }
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"unknown initialisation {scheme!r}: choose one of {', '.join(INIT_SCHEMES)}")
    if scheme == "default":
        return model
    for module in model.modules():
        if isinstance(module, (Conv2d, Linear)):
            schemes[scheme](module.weight)
            if module.bias is not None:
                zeros_(module.bias)
    return model
