"""Greedy layer-wise unsupervised pre-training with (denoising) autoencoders.

The lecture's recipe from before batch norm and ReLU made deep nets trainable from a random
start, and still useful when unlabelled data is plentiful and labels are few:

1. Train the first layer as an autoencoder on the unlabelled inputs: the encoder h = f(W x + b)
   (the network's own first layer and what follows it, e.g. ReLU), a fresh decoder
   x' = W' h + b', and the reconstruction loss ||x' - x||^2. A *denoising* autoencoder encodes
   a corrupted input x~ = x + noise and must still reconstruct the clean x, so it cannot learn
   the identity and has to capture the inputs' structure.
2. Freeze it, compute its codes h for the whole unlabelled set, and train the next layer as an
   autoencoder of h; and so on, one layer at a time (greedy: each layer is trained once, given
   the ones below).
3. The encoders' weights initialise the network; a classifier layer goes on top and the whole
   network is fine-tuned with the labels as usual.

:func:`layerwise` does steps 1-2 on a ``Sequential`` in place (every Linear but the last, the
classifier): ``layerwise(model, unlabelled)``, then train ``model`` on the labelled data.
"""

from __future__ import annotations

import numpy as np

from .. import nn, optim
from ..autograd import no_grad
from ..dtypes import array_of
from ..random import generator
from ..tensor import Tensor


def _stages(model: nn.Sequential) -> list[nn.Sequential]:
    """The encoders: each hidden Linear with the modules up to the next Linear (its activation,
    normalisation, dropout); the last Linear is the classifier and is not pre-trained."""
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"layerwise: expected an nn.Sequential of Linear layers, got {type(model).__name__}")
    modules = list(model)
    starts = [i for i, m in enumerate(modules) if isinstance(m, nn.Linear)]
    if len(starts) < 2:
        raise ValueError(
            f"layerwise: the Sequential needs a hidden Linear layer and a classifier Linear; it has {len(starts)} Linear"
        )
    return [nn.Sequential(*modules[a:b]) for a, b in zip(starts[:-1], starts[1:])]


def layerwise(
    model: nn.Sequential,
    unlabelled,
    epochs: int = 10,
    batch_size: int = 64,
    lr: float = 1e-3,
    noise: float = 0.3,
) -> list[float]:
    """Pre-trains ``model``'s hidden Linear layers greedily, each as a denoising autoencoder of
    the codes of the layers below (inputs corrupted with Gaussian noise of std ``noise`` times
    each feature's std; 0 for a plain autoencoder), with Adam at ``lr``; the weights are changed
    in place and the decoders thrown away. ``unlabelled``: an array (N, features). Returns each
    layer's reconstruction loss (mean squared error) over its last epoch."""
    x = np.asarray(array_of(unlabelled), dtype=np.float32)
    stages = _stages(model)
    if x.ndim != 2 or x.shape[1] != stages[0][0].in_features or len(x) == 0:
        raise ValueError(
            f"layerwise: unlabelled data must be (N, {stages[0][0].in_features}) with N > 0, got {x.shape}"
        )
    if int(epochs) != epochs or epochs < 1 or int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"layerwise: epochs and batch_size must be positive whole numbers, got {epochs}, {batch_size}")
    if not noise >= 0:
        raise ValueError(f"layerwise: noise must be non-negative, got {noise}")
    rng = generator()
    losses = []
    codes = x
    for encoder in stages:
        linear = encoder[0]
        decoder = nn.Linear(linear.out_features, linear.in_features)
        opt = optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=lr)
        scale = codes.std(0, keepdims=True) * noise
        encoder.train()
        for _ in range(int(epochs)):
            order, total = rng.permutation(len(codes)), 0.0
            for start in range(0, len(codes), int(batch_size)):
                clean = codes[order[start : start + int(batch_size)]]
                corrupted = clean + scale * rng.standard_normal(clean.shape).astype(np.float32)
                loss = ((decoder(encoder(Tensor(corrupted))) - Tensor(clean)) ** 2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.item()) * len(clean)
        losses.append(total / len(codes))
        encoder.eval()
        with no_grad():  # the codes the next layer learns to reconstruct
            codes = encoder(Tensor(codes)).data
        encoder.train()
    return losses


__all__ = ["layerwise"]
