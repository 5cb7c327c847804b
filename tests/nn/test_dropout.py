"""Dropout family, DropConnect and Gaussian noise: statistics in training, exact behaviour in eval."""

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn
from minigrad.nn import functional as F

N = 200_000  # binomial keep-rate: std sqrt(p (1 - p) / N) ~ 0.001


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_inverted_dropout_keep_rate_scale_and_gradient(p):
    x = mg.ones(N, requires_grad=True)
    layer = nn.Dropout(p)
    y = layer(x)
    values = y.numpy()
    assert abs((values == 0).mean() - p) < 0.005
    np.testing.assert_allclose(np.unique(values), [0.0, 1.0 / (1.0 - p)], rtol=1e-6)
    assert abs(values.mean() - 1.0) < 0.01  # expectation preserved
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), values)  # d y / d x = mask / (1 - p)
    layer.eval()
    assert layer(x) is x  # identity in eval


def test_scale_at_test_variant_has_the_same_expectation():
    x = mg.full((N,), 3.0)
    layer = nn.Dropout(0.4, mode="scale_at_test")
    train_values = layer(x).numpy()
    np.testing.assert_allclose(np.unique(train_values), [0.0, 3.0])  # unscaled in training
    layer.eval()
    np.testing.assert_allclose(layer(x).numpy(), 0.6 * 3.0)  # weight-scaling rule at test time
    assert abs(train_values.mean() - 1.8) < 0.02


def test_dropout_edges_and_errors():
    x = mg.randn(10)
    assert F.dropout(x, 0.0) is x
    assert not F.dropout(x, 1.0).numpy().any()
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        nn.Dropout(1.5)
    with pytest.raises(ValueError, match="mode"):
        nn.Dropout(0.5, mode="sometimes")


@pytest.mark.parametrize(
    "make",
    [
        nn.Dropout,
        nn.Dropout2d,
        lambda p: nn.DropConnect(nn.Linear(2, 2), p),
        lambda p: nn.DropConnectLinear(2, 2, p=p),
        lambda p: F.dropout(mg.ones(2), p),
        lambda p: F.dropout2d(mg.ones(1, 2, 2), p),
    ],
)
def test_every_dropout_refuses_the_same_bad_probabilities(make):
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match=r"drop probability must be in \[0, 1\], got"):
            make(bad)
    with pytest.raises(TypeError, match="must be a number, got 'half'"):
        make("half")


def test_dropout_masks_follow_the_global_seed():
    x = mg.ones(1000)
    mg.manual_seed(7)
    first = F.dropout(x, 0.5).numpy()
    mg.manual_seed(7)
    np.testing.assert_array_equal(F.dropout(x, 0.5).numpy(), first)
    assert not np.array_equal(F.dropout(x, 0.5).numpy(), first)


def test_dropout2d_drops_whole_channels():
    x = mg.ones(100, 400, 3, 3)
    y = nn.Dropout2d(0.3)(x).numpy()
    per_channel = y.reshape(100, 400, 9)
    assert (per_channel.min(axis=2) == per_channel.max(axis=2)).all()  # all or nothing per map
    assert abs((per_channel[:, :, 0] == 0).mean() - 0.3) < 0.01
    np.testing.assert_allclose(np.unique(y), [0.0, 1 / 0.7], rtol=1e-6)
    with pytest.raises(ValueError, match="expects"):
        F.dropout2d(mg.ones(3, 4), 0.5)


def test_drop_connect_linear_masks_individual_weights():
    layer = nn.DropConnectLinear(300, 200, p=0.25)
    eye = mg.eye(300)
    out = layer(eye)  # row i = W'[:, i] + b, so the effective weight can be read back
    effective = (out.numpy() - layer.bias.numpy()).T
    dropped = np.isclose(effective, 0.0, atol=1e-7)
    assert abs(dropped.mean() - 0.25) < 0.01
    np.testing.assert_allclose(effective[~dropped], layer.weight.numpy()[~dropped] / 0.75, atol=1e-6)
    out.sum().backward()  # dW = mask / (1 - p)
    np.testing.assert_allclose(layer.weight.grad.numpy(), np.where(dropped, 0.0, 1 / 0.75), rtol=1e-6)
    layer.eval()
    np.testing.assert_allclose(layer(eye).numpy(), layer.weight.numpy().T + layer.bias.numpy(), rtol=1e-6)
    assert list(layer.state_dict()) == ["weight", "bias"]


def test_drop_connect_wrapper_uses_the_wrapped_layer():
    inner = nn.Linear(50, 40)
    wrapped = nn.DropConnect(inner, p=0.5)
    effective = wrapped(mg.eye(50)).numpy() - inner.bias.numpy()
    assert abs(np.isclose(effective, 0.0, atol=1e-7).mean() - 0.5) < 0.05
    wrapped.eval()
    np.testing.assert_allclose(wrapped(mg.eye(50)).numpy(), inner(mg.eye(50)).numpy())
    with pytest.raises(TypeError, match="wraps layers with a weight"):
        nn.DropConnect(nn.ReLU())


def test_gaussian_noise_in_training_only():
    x = mg.full((N,), 2.0)
    layer = nn.GaussianNoise(0.5)
    noise = layer(x).numpy() - 2.0
    assert abs(noise.mean()) < 0.01 and abs(noise.std() - 0.5) < 0.01
    layer.eval()
    assert layer(x) is x
