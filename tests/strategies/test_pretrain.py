"""Greedy layer-wise autoencoder pre-training: each hidden layer learns to reconstruct its input
(the loss falls), the classifier is left alone, and bad input is refused."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
from minigrad import models, nn
from minigrad.strategies import pretrain


def _unlabelled(n=256, seed=0):
    rng = np.random.default_rng(seed)
    basis = rng.standard_normal((4, 16))  # inputs on a 4-dimensional subspace: structure to find
    return (rng.standard_normal((n, 4)) @ basis).astype(np.float32)


def test_each_hidden_layer_learns_to_reconstruct_and_the_head_is_untouched():
    mg.manual_seed(0)
    model = models.mlp([16, 32, 16, 3])
    head = model[-1].weight.data.copy()
    first = model[0].weight.data.copy()
    short = pretrain.layerwise(model, _unlabelled(), epochs=1, noise=0.0)
    mg.manual_seed(0)
    again = models.mlp([16, 32, 16, 3])
    longer = pretrain.layerwise(again, _unlabelled(), epochs=30, noise=0.0)
    assert len(short) == len(longer) == 2  # the two hidden Linear layers; the classifier is not pre-trained
    assert longer[0] < 0.2 * short[0]  # more epochs, better reconstructions of the inputs
    with mg.no_grad():  # the second layer reconstructs the first one's codes far better than their mean does
        codes = again[:2](mg.tensor(_unlabelled())).data
    assert longer[1] < 0.5 * float(codes.var(0).mean())
    assert np.array_equal(model[-1].weight.data, head) and not np.array_equal(model[0].weight.data, first)


def test_denoising_still_reconstructs_the_clean_input():
    mg.manual_seed(0)
    x = _unlabelled()
    (loss,) = pretrain.layerwise(models.mlp([16, 64, 3]), x, epochs=40, noise=0.3)
    assert loss < 0.3 * float(np.mean(x**2))  # far below predicting zeros


def test_bad_input_is_refused():
    with pytest.raises(TypeError, match="expected an nn.Sequential"):
        pretrain.layerwise(nn.Linear(4, 2), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="needs a hidden Linear layer"):
        pretrain.layerwise(nn.Sequential(nn.Linear(4, 2)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"must be \(N, 16\)"):
        pretrain.layerwise(models.mlp([16, 8, 2]), np.zeros((3, 5)))
    with pytest.raises(ValueError, match=r"with N > 0"):
        pretrain.layerwise(models.mlp([16, 8, 2]), np.zeros((0, 16)))
    with pytest.raises(ValueError, match="noise must be non-negative"):
        pretrain.layerwise(models.mlp([16, 8, 2]), np.zeros((3, 16)), noise=-1)
