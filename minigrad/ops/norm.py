"""Normalisation ops: batch norm on the compiled kernels (``_C.batch_norm_*``), and layer,
group and instance norm on one shared normalise-over-axes Function.

All of them compute  x_hat = (x - mu) / sqrt(var + eps)  with the biased variance over some
axes and then an optional per-feature affine  y = gamma x_hat + beta;  they differ only in
which axes mu and var are taken over:

    batch norm     (N, C, *): over N and the spatial axes, per channel
    layer norm     over the trailing ``normalized_shape`` axes, per sample
    group norm     (N, C, *): over each group of C/G channels and the spatial axes, per sample
    instance norm  (N, C, *): over the spatial axes, per sample and channel
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from .. import _C
from ..autograd import Function
from ..dtypes import bf16_bits, is_bfloat16
from .elementwise import relu_gradient

if TYPE_CHECKING:  # the tensor module imports ops
    from ..tensor import Tensor


def _check_float(op, x, *, bfloat16_input=False, **vectors):
    """Input float32 or float64 (or bfloat16 where the op takes it: then its vectors are
    float32), and every per-feature vector of the input's dtype."""
    if bfloat16_input and is_bfloat16(x.dtype):
        wanted = np.dtype(np.float32)
    elif x.dtype.type in (np.float32, np.float64):
        wanted = x.dtype
    else:
        allowed = "float32, float64 or bfloat16" if bfloat16_input else "float32 or float64"
        raise TypeError(f"{op}: input must be {allowed}, got {x.dtype}")
    for name, v in vectors.items():
        if v is not None and v.dtype != wanted:
            raise TypeError(f"{op}: {name} has dtype {v.dtype} but must be {wanted} for a {x.dtype} input")


def _batch_norm_affine(x, affine, has_weight, has_bias, running_mean, running_var, bfloat16_input):
    """Batch norm's weight and bias (each None when absent) out of its inputs after x, checked
    with x and the running statistics (bfloat16 x: float32 vectors, where the op takes it)."""
    weight = affine[0] if has_weight else None
    bias = affine[-1] if has_bias else None
    _check_float(
        "batch_norm",
        x,
        bfloat16_input=bfloat16_input,
        weight=weight,
        bias=bias,
        running_mean=running_mean,
        running_var=running_var,
    )
    return weight, bias


class BatchNorm(Function):
    """Batch normalisation of x (N, C, *) per channel c, with an optional residual r (x's shape,
    a residual block's skip path) added and an optional ReLU, fused into the same pass.

    Forward (training), with M = N * prod(*) values per channel:
        mu_B = (1/M) sum x,   var_B = (1/M) sum (x - mu_B)^2          (biased)
        x_hat = (x - mu_B) / sqrt(var_B + eps),   y = gamma x_hat + beta   (+ r, then max(y, 0))
        running_mean <- (1 - momentum) running_mean + momentum mu_B
        running_var  <- (1 - momentum) running_var  + momentum var_B M / (M - 1)  (unbiased)
    In evaluation mode mu_B and var_B are the running statistics and nothing is updated.

    Backward, g = dL/dy (times [y > 0] with the fused ReLU; dL/dr = g), sums over the channel's
    M values:
        dL/dbeta  = sum g,     dL/dgamma = sum g x_hat
        dL/dx = gamma / sqrt(var_B + eps) * (g - (1/M) dL/dbeta - x_hat (1/M) dL/dgamma)
    (training; in evaluation mode the statistics are constants: dL/dx = gamma g / sqrt(var + eps)).
    Ioffe & Szegedy, "Batch Normalization", 2015.

    Inputs are x, then weight and/or bias when present (``has_weight``, ``has_bias``), then the
    residual (``has_residual``). The running statistics are numpy arrays updated in place by
    the kernel; ``batch_norm`` records that on their Tensors.
    """

    # autocast: float32 arithmetic and statistics; a bfloat16 activation is read and written as
    # bfloat16 (minigrad/amp.py), the weights, statistics and their gradients stay float32
    amp = "float32_math"

    def forward(
        self,
        x,
        *affine,
        has_weight,
        has_bias,
        running_mean,
        running_var,
        training,
        momentum,
        eps,
        relu=False,
        has_residual=False,
    ) -> np.ndarray:
        residual = np.ascontiguousarray(affine[-1]) if has_residual else None
        affine = affine[:-1] if has_residual else affine
        weight, bias = _batch_norm_affine(x, affine, has_weight, has_bias, running_mean, running_var, True)
        n, c = x.shape[0], x.shape[1]
        x3 = x.reshape(n, c, math.prod(x.shape[2:]))  # (N, C, S): a view, the kernels' layout
        out = np.empty_like(x3)
        stats = np.float32 if is_bfloat16(x.dtype) else x.dtype
        mean, invstd = np.empty(c, stats), np.empty(c, stats)
        r3 = None if residual is None else bf16_bits(residual.reshape(x3.shape))
        if training:
            _C.batch_norm_forward_train(
                bf16_bits(x3),
                weight,
                bias,
                running_mean,
                running_var,
                bf16_bits(out),
                mean,
                invstd,
                momentum,
                eps,
                relu,
                r3,
            )
        else:
            _C.batch_norm_forward_eval(
                bf16_bits(x3), weight, bias, running_mean, running_var, bf16_bits(out), mean, invstd, eps, relu, r3
            )
        self.x3, self.weight, self.bias, self.mean, self.invstd = x3, weight, bias, mean, invstd
        self.training, self.relu, self.has_residual = training, relu, has_residual
        # With a residual the ReLU's mask is the output's sign (x alone no longer gives it).
        self.out = out if has_residual and relu else None
        return out.reshape(x.shape)

    def backward(self, g) -> tuple[np.ndarray | None, ...]:
        x3, c = self.x3, self.x3.shape[1]
        wants = list(self.needs_input_grad)
        if self.has_residual:
            wants = wants[:-1]
        wants_weight = self.weight is not None and wants[1]
        wants_bias = self.bias is not None and wants[-1]
        dx = np.empty_like(x3) if wants[0] else None
        dweight = np.empty(c, self.mean.dtype) if wants_weight else None
        dbias = np.empty(c, self.mean.dtype) if wants_bias else None
        g3 = np.ascontiguousarray(g, dtype=x3.dtype).reshape(x3.shape)
        relu_in_kernel = self.relu
        if self.out is not None:  # dL/d(bn(x) + r): the ReLU's mask from the output
            g3 = relu_gradient(g3, self.out)
            relu_in_kernel = False
        _C.batch_norm_backward(
            bf16_bits(x3),
            bf16_bits(g3),
            self.weight,
            self.bias,
            self.mean,
            self.invstd,
            bf16_bits(dx),
            dweight,
            dbias,
            self.training,
            relu_in_kernel,
        )
        grads = (None if dx is None else dx.reshape(g.shape),)
        if self.weight is not None:
            grads += (dweight,)
        if self.bias is not None:
            grads += (dbias,)
        if self.has_residual:
            grads += (g3.reshape(g.shape),)
        return grads


class SyncBatchNorm(Function):
    """Batch normalisation (training) with statistics over the global batch of every rank.

    Forward: each rank sums x and x^2 per channel over its M_r values; one all-reduce gives the
    totals over M = sum M_r, hence mu and the biased var of the whole batch; then the formulas
    of :class:`BatchNorm` (running statistics updated with M / (M - 1)).
    Backward: sum g and sum g x_hat are all-reduced too, and with those global sums
        dL/dx = gamma / sqrt(var + eps) * (g - (1/M) sum_all g - x_hat (1/M) sum_all g x_hat),
    while dL/dgamma and dL/dbeta stay this rank's own sums (data-parallel training averages the
    ranks' parameter gradients, which gives the whole batch's).
    """

    amp = "float32"

    def forward(
        self, x, *affine, has_weight, has_bias, running_mean, running_var, training, momentum, eps, relu=False
    ) -> np.ndarray:
        from .. import distributed as dist

        weight, bias = _batch_norm_affine(x, affine, has_weight, has_bias, running_mean, running_var, False)
        n, c = x.shape[0], x.shape[1]
        x3 = x.reshape(n, c, math.prod(x.shape[2:]))
        wide = x3.astype(np.float64)
        sums = np.concatenate([wide.sum(axis=(0, 2)), (wide * wide).sum(axis=(0, 2)), [float(n * x3.shape[2])]])
        dist.start_all_reduce(sums).wait()
        count = sums[-1]
        mean = sums[:c] / count
        var = np.maximum(sums[c : 2 * c] / count - mean * mean, 0.0)
        out, kept_mean, invstd = np.empty_like(x3), np.empty(c, x.dtype), np.empty(c, x.dtype)
        _C.batch_norm_forward_eval(  # normalising with given statistics is what evaluation does
            x3, weight, bias, mean.astype(x.dtype), var.astype(x.dtype), out, kept_mean, invstd, eps, relu
        )
        if running_mean is not None:
            running_mean *= 1 - momentum
            running_mean += (momentum * mean).astype(running_mean.dtype)
            running_var *= 1 - momentum
            running_var += (momentum * var * count / max(count - 1, 1)).astype(running_var.dtype)
        self.x_hat = (wide - mean[None, :, None]) * (1.0 / np.sqrt(var + eps))[None, :, None]
        self.out, self.count, self.invstd = (out if relu else None), count, 1.0 / np.sqrt(var + eps)
        self.weight, self.has_bias, self.relu = weight, has_bias, relu
        return out.reshape(x.shape)

    def backward(self, g) -> tuple[np.ndarray | None, ...]:
        from .. import distributed as dist

        x_hat, c = self.x_hat, self.x_hat.shape[1]
        g3 = np.asarray(g, dtype=np.float64).reshape(x_hat.shape)
        if self.relu:
            g3 = g3 * (self.out > 0)
        local = np.concatenate([g3.sum(axis=(0, 2)), (g3 * x_hat).sum(axis=(0, 2))])
        totals = local.copy()
        dist.start_all_reduce(totals).wait()
        scale = self.invstd * (self.weight.astype(np.float64) if self.weight is not None else 1.0)
        dx = scale[None, :, None] * (g3 - totals[:c, None] / self.count - x_hat * (totals[c:, None] / self.count))
        dtype = g.dtype
        grads = (dx.reshape(g.shape).astype(dtype),)
        if self.weight is not None:
            grads += (local[c:].astype(dtype),)
        if self.has_bias:
            grads += (local[:c].astype(dtype),)
        return grads


class Normalize(Function):
    """x_hat = (x - mu) / sqrt(var + eps), mu and the biased var taken over ``axes``
    (layer, group and instance norm; their affine is an ordinary broadcast multiply-add).

    Backward, with n values per normalised slice and means over the same axes:
        dL/dx = (1 / sqrt(var + eps)) (g - mean(g) - x_hat mean(g x_hat))
    """

    amp = "float32"  # autocast: computed in float32 (minigrad/amp.py)

    def forward(self, x, axes, eps) -> np.ndarray:
        self.axes = axes
        mu = x.mean(axis=axes, keepdims=True)
        centered = x - mu
        var = np.mean(centered * centered, axis=axes, keepdims=True)
        self.invstd = (1.0 / np.sqrt(var + eps)).astype(x.dtype)
        self.x_hat = centered * self.invstd
        return self.x_hat

    def backward(self, g) -> np.ndarray:
        axes, x_hat = self.axes, self.x_hat
        return self.invstd * (
            g - g.mean(axis=axes, keepdims=True) - x_hat * np.mean(g * x_hat, axis=axes, keepdims=True)
        )


# ------------------------------------------------------------------ functional forms
def _as_tensor(x):
    from ..tensor import Tensor

    return x if x is None or isinstance(x, Tensor) else Tensor(x)


def _check_vector(op, name, v, shape):
    if v is not None and tuple(v.shape) != tuple(shape):
        raise ValueError(f"{op}: {name} must have shape {tuple(shape)}, got {tuple(v.shape)}")


def _affine(out, weight, bias, shape):
    """out * weight + bias with the parameters reshaped to ``shape`` for broadcasting."""
    if weight is not None:
        out = out * weight.reshape(shape)
    if bias is not None:
        out = out + bias.reshape(shape)
    return out


def batch_norm(
    input,
    running_mean,
    running_var,
    weight=None,
    bias=None,
    training=False,
    momentum=0.1,
    eps=1e-5,
    relu=False,
    sync=False,
    residual=None,
) -> Tensor:
    """Batch normalisation of ``input`` (N, C, *) per channel, as ``torch.nn.functional.batch_norm``
    (formulas on :class:`BatchNorm`). ``relu=True`` fuses a following ReLU into the same kernels.
    ``residual`` (a Tensor of the input's shape): y = bn(x) + residual (then the ReLU), a residual
    block's join, in the same pass (where its dtype is the input's and the batch is not
    synchronised across ranks; otherwise the add and ReLU follow as separate ops).

    ``running_mean`` / ``running_var`` are (C,) Tensors or None. In training they are updated in
    place (when given) with weight ``momentum`` on the batch statistics, and each update bumps
    the Tensor's version counter, so a graph that saved their old values refuses to reuse them.
    In evaluation (``training=False``) they are required and used instead of batch statistics.
    ``momentum=None`` (a cumulative average) needs a count of the batches seen, which only a
    layer keeps: the layer passes ``momentum = 1 / num_batches_tracked``, as PyTorch's
    ``_BatchNorm`` does; here, as in ``torch.nn.functional.batch_norm``, None is an error.
    ``sync=True`` (training only): the statistics of the global batch over the ranks of
    :mod:`minigrad.distributed` (:class:`SyncBatchNorm`), as ``nn.SyncBatchNorm`` uses.
    """
    from .. import autograd

    x = _as_tensor(input)
    weight, bias = _as_tensor(weight), _as_tensor(bias)
    if x.ndim < 2:
        raise ValueError(f"batch_norm: input must be (N, C, *) with at least 2 dimensions, got shape {x.shape}")
    channels = x.shape[1]
    for name, v in (("weight", weight), ("bias", bias), ("running_mean", running_mean), ("running_var", running_var)):
        _check_vector("batch_norm", name, v, (channels,))
    if momentum is None:
        raise ValueError(
            "batch_norm: momentum must be a number; for a cumulative average pass "
            "momentum = 1 / num_batches_tracked (what BatchNorm layers do for momentum=None)"
        )
    if training and not sync and np.prod(x.shape) // channels <= 1:  # synchronised: other ranks add values
        raise ValueError(
            f"batch_norm: expected more than 1 value per channel when training, got input of shape {x.shape}"
        )
    if not training and (running_mean is None or running_var is None):
        raise ValueError("batch_norm: running_mean and running_var are required when training=False")
    buffers = [b for b in (running_mean, running_var) if b is not None] if training else []
    for b in buffers:
        if b.requires_grad and autograd.is_grad_enabled():
            raise RuntimeError("batch_norm: running statistics are updated in place and must not require grad")
    if residual is not None:
        residual = _as_tensor(residual)
        if tuple(residual.shape) != tuple(x.shape):
            raise ValueError(f"batch_norm: residual has shape {residual.shape} but the input has {x.shape}")
    fused = residual is not None and residual.dtype == x.dtype and not (sync and training)
    inputs = [x] + [p for p in (weight, bias) if p is not None] + ([residual] if fused else [])
    out = (SyncBatchNorm if sync and training else BatchNorm).apply(
        *inputs,
        has_weight=weight is not None,
        has_bias=bias is not None,
        running_mean=None if running_mean is None else running_mean.data,
        running_var=None if running_var is None else running_var.data,
        training=bool(training),
        momentum=float(momentum),
        eps=float(eps),
        relu=bool(relu) and (residual is None or fused),
        **({"has_residual": True} if fused else {}),
    )
    for b in buffers:  # the kernel already wrote the new values: record the in-place change
        b.mark_modified()
    if residual is not None and not fused:
        out = out + residual
        return out.relu() if relu else out
    return out


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5) -> Tensor:
    """Normalises over the trailing ``normalized_shape`` axes of each sample, then
    y = x_hat * weight + bias with weight and bias of shape ``normalized_shape``
    (as ``torch.nn.functional.layer_norm``; Ba, Kiros & Hinton, "Layer Normalization", 2016)."""
    x, weight, bias = _as_tensor(input), _as_tensor(weight), _as_tensor(bias)
    shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else tuple(normalized_shape)
    if not shape or x.ndim < len(shape) or tuple(x.shape[x.ndim - len(shape) :]) != shape:
        raise ValueError(
            f"layer_norm: normalized_shape {shape} must be the trailing dimensions "
            f"of the input, got input of shape {x.shape}"
        )
    for name, v in (("weight", weight), ("bias", bias)):
        _check_vector("layer_norm", name, v, shape)
    out = Normalize.apply(x, axes=tuple(range(x.ndim - len(shape), x.ndim)), eps=float(eps))
    return _affine(out, weight, bias, shape)


def _channel_shape(x):
    return (x.shape[1],) + (1,) * (x.ndim - 2)


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5) -> Tensor:
    """Normalises each group of C / ``num_groups`` consecutive channels (with all spatial
    positions) of each sample, then a per-channel affine (as ``torch.nn.functional.group_norm``;
    Wu & He, "Group Normalization", 2018). One group is layer norm over (C, *); C groups is
    instance norm."""
    x, weight, bias = _as_tensor(input), _as_tensor(weight), _as_tensor(bias)
    if x.ndim < 2:
        raise ValueError(f"group_norm: input must be (N, C, *), got shape {x.shape}")
    channels = x.shape[1]
    if num_groups < 1 or channels % num_groups:
        raise ValueError(f"group_norm: {channels} channels cannot be split into {num_groups} groups")
    for name, v in (("weight", weight), ("bias", bias)):
        _check_vector("group_norm", name, v, (channels,))
    grouped = x.reshape(x.shape[0], num_groups, -1)
    out = Normalize.apply(grouped, axes=(2,), eps=float(eps)).reshape(x.shape)
    return _affine(out, weight, bias, _channel_shape(x))


def instance_norm(
    input, running_mean=None, running_var=None, weight=None, bias=None, use_input_stats=True, momentum=0.1, eps=1e-5
) -> Tensor:
    """Normalises each channel of each sample over its spatial positions, then a per-channel
    affine (as ``torch.nn.functional.instance_norm``; Ulyanov et al., "Instance Normalization",
    2016). With ``use_input_stats=False`` the running statistics normalise instead (the batch
    norm kernel in evaluation mode). Given running statistics are updated in place with the
    batch average of the per-instance mean and unbiased variance, as PyTorch does."""
    x, weight, bias = _as_tensor(input), _as_tensor(weight), _as_tensor(bias)
    if x.ndim < 3:
        raise ValueError(f"instance_norm: input must be (N, C, *spatial), got shape {x.shape}")
    channels = x.shape[1]
    for name, v in (("weight", weight), ("bias", bias), ("running_mean", running_mean), ("running_var", running_var)):
        _check_vector("instance_norm", name, v, (channels,))
    if not use_input_stats:
        if running_mean is None or running_var is None:
            raise ValueError("instance_norm: running_mean and running_var are required when use_input_stats=False")
        return batch_norm(x, running_mean, running_var, weight, bias, training=False, eps=eps)
    axes = tuple(range(2, x.ndim))
    if math.prod(x.shape[2:]) <= 1:
        raise ValueError(
            f"instance_norm: expected more than 1 spatial element when training, got input of shape {x.shape}"
        )
    if running_mean is not None:
        running_mean.copy_((1 - momentum) * running_mean.data + momentum * x.data.mean(axis=axes).mean(axis=0))
    if running_var is not None:
        running_var.copy_((1 - momentum) * running_var.data + momentum * x.data.var(axis=axes, ddof=1).mean(axis=0))
    out = Normalize.apply(x, axes=axes, eps=float(eps))
    return _affine(out, weight, bias, _channel_shape(x))
