"""Normalisation layers. Each standardises activations over some axes,
x_hat = (x - mean) / sqrt(var + eps) (biased variance), then applies a learned per-channel
scale and shift y = gamma * x_hat + beta (``weight`` and ``bias``, initialised to 1 and 0).
They differ only in the axes the statistics are taken over, for (N, C, H, W) input:

=============  ================================  ==========================================
BatchNorm      (N, H, W) per channel              batch statistics in training, running in eval
LayerNorm      the trailing ``normalized_shape``  per sample; same in training and eval
InstanceNorm   (H, W) per sample and channel      per sample; style/contrast normalisation
GroupNorm      (C/G, H, W) per sample and group   per sample; G=1 is LayerNorm over (C, H, W),
                                                  G=C is InstanceNorm
=============  ================================  ==========================================
"""

from __future__ import annotations

import math

import numpy as np

from ...tensor import Tensor
from .. import functional as F
from ..module import Module, Parameter


def _affine(module, shape, affine: bool, dtype) -> None:
    """gamma = 1 and beta = 0 (the layer starts as plain standardisation), or None without affine."""
    module.register_parameter("weight", Parameter(np.ones(shape, dtype=dtype)) if affine else None)
    module.register_parameter("bias", Parameter(np.zeros(shape, dtype=dtype)) if affine else None)


class _BatchNorm(Module):
    """Batch normalisation (Ioffe & Szegedy, 2015). In training: statistics of the current
    batch per channel, and the running estimates move towards them,
    running = (1 - momentum) * running + momentum * batch  (running_var takes the unbiased
    batch variance, as PyTorch); ``momentum=None`` uses the cumulative average instead.
    In eval: the running estimates. ``track_running_stats=False`` always uses batch statistics."""

    _input_ranks: tuple = ()

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        dtype=np.float32,
    ):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        _affine(self, (num_features,), affine, dtype)
        if track_running_stats:
            self.register_buffer("running_mean", Tensor(np.zeros(num_features, dtype=dtype)))
            self.register_buffer("running_var", Tensor(np.ones(num_features, dtype=dtype)))
            self.register_buffer("num_batches_tracked", Tensor(np.array(0, dtype=np.int64)))
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean.fill_(0)
            self.running_var.fill_(1)
            self.num_batches_tracked.fill_(0)

    def forward(self, x, relu: bool = False, sync: bool = False, residual=None):
        """``relu=True`` returns relu(bn(x)) from one fused kernel pass (forward and backward):
        the usual conv -> BN -> ReLU chain without a separate ReLU op and its temporaries.
        ``residual`` (x's shape): bn(x) + residual (then the ReLU) in the same pass, a residual
        block's join relu(bn(conv(h)) + shortcut) without the separate add and ReLU passes.
        ``sync``: training statistics over every rank (what :class:`SyncBatchNorm` passes)."""
        if x.ndim not in self._input_ranks or x.shape[1] != self.num_features:
            ranks = " or ".join(f"{r}-D" for r in self._input_ranks)
            raise ValueError(
                f"{type(self).__name__}({self.num_features}) expects {ranks} input with "
                f"{self.num_features} channels in dimension 1, got shape {x.shape}"
            )
        factor = self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.fill_(self.num_batches_tracked.item() + 1)
            if self.momentum is None:
                factor = 1.0 / float(self.num_batches_tracked.item())
        use_batch_stats = self.training or not self.track_running_stats
        # In training with tracking, F.batch_norm updates the running buffers in place.
        keep_running = not self.training or self.track_running_stats
        return F.batch_norm(
            x,
            self.running_mean if keep_running else None,
            self.running_var if keep_running else None,
            self.weight,
            self.bias,
            use_batch_stats,
            factor if factor is not None else 0.0,
            self.eps,
            relu=relu,
            sync=sync,
            residual=residual,
        )

    def extra_repr(self):
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"track_running_stats={self.track_running_stats}"
        )


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) or (N, C, L) input, statistics per channel C."""

    _input_ranks = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W) input, statistics per channel over (N, H, W)."""

    _input_ranks = (4,)


class SyncBatchNorm(_BatchNorm):
    """Batch normalisation whose training statistics are those of the global batch, over every
    rank of :mod:`minigrad.distributed` (for data-parallel training with small per-rank
    batches); on one process, or in evaluation, exactly BatchNorm. Any input (N, C, *).
    ``SyncBatchNorm.convert_sync_batchnorm(model)`` swaps every BatchNorm1d/2d of a model for
    one, keeping its parameters and running statistics."""

    _input_ranks = (2, 3, 4, 5)

    def forward(self, x, relu: bool = False, residual=None) -> Tensor:
        from ... import distributed as dist

        # batch_norm syncs only training
        return super().forward(x, relu=relu, sync=dist.get_world_size() > 1, residual=residual)

    @classmethod
    def convert_sync_batchnorm(cls, module: Module) -> Module:
        """``module`` with every BatchNorm1d/BatchNorm2d replaced (in place, and returned) by a
        SyncBatchNorm holding the same parameters and running statistics."""
        if isinstance(module, (BatchNorm1d, BatchNorm2d)):
            sync = cls(module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats)
            sync.load_state_dict(module.state_dict())
            sync.train(module.training)
            if module.affine:  # the same Parameter objects, so an optimiser built before still sees them
                sync.weight, sync.bias = module.weight, module.bias
            return sync
        for name, child in list(module.named_children()):
            replaced = cls.convert_sync_batchnorm(child)
            if replaced is not child:
                setattr(module, name, replaced)
        return module


class LayerNorm(Module):
    """Normalises each sample over its trailing ``normalized_shape`` dimensions (Ba et al., 2016);
    ``weight``/``bias`` have that shape. Independent of the batch, so the same in training and eval."""

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True, dtype=np.float32):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else tuple(normalized_shape)
        self.normalized_shape, self.eps, self.elementwise_affine = shape, eps, elementwise_affine
        _affine(self, shape, elementwise_affine, dtype)

    def forward(self, x) -> Tensor:
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class GroupNorm(Module):
    """Splits the C channels into ``num_groups`` groups and normalises each sample's group over
    (C/G, H, W) (Wu & He, 2018); per-channel ``weight``/``bias``. Batch-independent."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True, dtype=np.float32):
        super().__init__()
        if num_groups < 1 or num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels ({num_channels}) must be divisible by num_groups ({num_groups})")
        self.num_groups, self.num_channels, self.eps, self.affine = num_groups, num_channels, eps, affine
        _affine(self, (num_channels,), affine, dtype)

    def forward(self, x) -> Tensor:
        return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"


class InstanceNorm2d(_BatchNorm):
    """Normalises each sample's channel over (H, W) (Ulyanov et al., 2016). PyTorch's defaults:
    no affine parameters and no running statistics (``affine=True`` and
    ``track_running_stats=True`` switch them on; then eval uses the running estimates)."""

    _input_ranks = (4,)

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = False,
        track_running_stats: bool = False,
        dtype=np.float32,
    ):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, dtype)

    def forward(self, x) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.num_features:
            raise ValueError(
                f"InstanceNorm2d({self.num_features}) expects 4-D input with "
                f"{self.num_features} channels in dimension 1, got shape {x.shape}"
            )
        # num_batches_tracked exists for checkpoint compatibility but, as in PyTorch, stays 0.
        return F.instance_norm(
            x,
            self.running_mean,
            self.running_var,
            self.weight,
            self.bias,
            self.training or not self.track_running_stats,
            self.momentum if self.momentum is not None else 0.0,
            self.eps,
        )


NORMS = ("batch", "layer", "group", "none")


def norm_layer(kind: str | None, num_features: int, spatial: bool) -> Module | None:
    """The normalisation layer the model builders insert after a Conv2d (``spatial``) or a hidden
    Linear: ``"batch"`` BatchNorm2d/BatchNorm1d; ``"layer"`` GroupNorm(1, C) for feature maps
    (LayerNorm over each sample's C x H x W) or LayerNorm for a feature vector; ``"group"``
    GroupNorm with gcd(C, 8) groups (a feature vector has no channels: LayerNorm); ``"none"`` or
    None: no layer."""
    if kind in (None, "none"):
        return None
    if kind == "batch":
        return BatchNorm2d(num_features) if spatial else BatchNorm1d(num_features)
    if kind == "layer":
        return GroupNorm(1, num_features) if spatial else LayerNorm(num_features)
    if kind == "group":
        return GroupNorm(math.gcd(num_features, 8), num_features) if spatial else LayerNorm(num_features)
    raise ValueError(f"unknown normalisation {kind!r}: choose one of {', '.join(NORMS)}")


class NormReLU(Module):
    """A normalisation layer (or none) that takes BatchNorm's fused ``relu=`` and ``residual=``
    keywords, so it can stand where ResNet's blocks call ``bn(x, relu=True)`` and
    ``bn(x, residual=shortcut, relu=True)``: y = relu(norm(x) + residual), each part optional."""

    def __init__(self, norm: Module | None):
        super().__init__()
        self.norm = norm

    def forward(self, x, relu: bool = False, residual=None) -> Tensor:
        y = self.norm(x) if self.norm is not None else x
        if residual is not None:
            y = y + residual
        return y.relu() if relu else y
