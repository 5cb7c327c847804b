"""Initialisers: sample variances of large tensors within 5% of each formula, fans, gains."""

import math

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn
from minigrad.nn import init

LINEAR = (400, 1000)  # (out, in): fan_in 1000, fan_out 400
CONV = (64, 32, 5, 5)  # fan_in 32*25 = 800, fan_out 64*25 = 1600


def variance_of(fill, shape, **kwargs):
    t = mg.zeros(*shape)
    fill(t, **kwargs)
    return float(t.numpy().astype(np.float64).var())


@pytest.mark.parametrize("shape", [LINEAR, CONV], ids=["linear", "conv"])
@pytest.mark.parametrize(
    "fill,kwargs,expected",
    [
        (init.normal_, dict(std=0.01), lambda fi, fo: 1e-4),
        (init.normal_, dict(std=1.0), lambda fi, fo: 1.0),
        (init.uniform_, dict(a=-0.3, b=0.3), lambda fi, fo: 0.09 / 3),
        (init.xavier_uniform_, {}, lambda fi, fo: 2 / (fi + fo)),
        (init.xavier_normal_, dict(gain=5 / 3), lambda fi, fo: (5 / 3) ** 2 * 2 / (fi + fo)),
        (init.kaiming_uniform_, dict(nonlinearity="relu"), lambda fi, fo: 2 / fi),
        (init.kaiming_normal_, dict(nonlinearity="relu"), lambda fi, fo: 2 / fi),
        (init.kaiming_normal_, dict(mode="fan_out", nonlinearity="relu"), lambda fi, fo: 2 / fo),
        (init.he_normal_, dict(mode="fan_avg", nonlinearity="relu"), lambda fi, fo: 4 / (fi + fo)),
        (init.he_uniform_, dict(mode="fan_avg", nonlinearity="relu"), lambda fi, fo: 4 / (fi + fo)),
        (init.kaiming_uniform_, dict(a=math.sqrt(5)), lambda fi, fo: 1 / (3 * fi)),
    ],
    ids=[
        "small-random",
        "normal-1",
        "uniform",
        "xavier-uniform",
        "xavier-normal-tanh-gain",
        "he-uniform",
        "he-normal",
        "he-fan-out",
        "he-fan-avg",
        "he-uniform-fan-avg",
        "pytorch-default",
    ],
)
def test_sample_variance_matches_formula(shape, fill, kwargs, expected):
    fan_in, fan_out = init.calculate_fan_in_and_fan_out(mg.zeros(*shape))
    assert abs(variance_of(fill, shape, **kwargs) / expected(fan_in, fan_out) - 1) < 0.05


def test_fans_of_linear_and_conv_weights():
    assert init.calculate_fan_in_and_fan_out(mg.zeros(*LINEAR)) == (1000, 400)
    assert init.calculate_fan_in_and_fan_out(mg.zeros(*CONV)) == (800, 1600)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        init.calculate_fan_in_and_fan_out(mg.zeros(5))
    with pytest.raises(ValueError, match="fan_avg"):
        init.kaiming_normal_(mg.zeros(3, 3), mode="fan_sum")


def test_gains():
    assert init.calculate_gain("linear") == 1.0 and init.calculate_gain("sigmoid") == 1.0
    assert init.calculate_gain("conv2d") == 1.0
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    assert init.calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2 / 1.0001))
    with pytest.raises(ValueError, match="unsupported nonlinearity"):
        init.calculate_gain("swish")


def test_uniform_bounds_constants_and_reproducibility():
    t = init.xavier_uniform_(mg.zeros(30, 70), gain=2.0)
    bound = 2.0 * math.sqrt(6 / 100)
    assert np.abs(t.numpy()).max() <= bound and np.abs(t.numpy()).max() > 0.95 * bound
    np.testing.assert_array_equal(init.constant_(mg.zeros(2, 3), 0.25).numpy(), np.full((2, 3), 0.25))
    np.testing.assert_array_equal(init.ones_(mg.zeros(4)).numpy(), np.ones(4))
    mg.manual_seed(3)
    first = init.kaiming_normal_(mg.zeros(8, 8)).numpy().copy()
    mg.manual_seed(3)
    np.testing.assert_array_equal(init.kaiming_normal_(mg.zeros(8, 8)).numpy(), first)


def test_initialising_a_parameter_in_place_keeps_it_trainable():
    layer = nn.Linear(300, 200)
    weight = layer.weight
    init.kaiming_normal_(layer.weight, nonlinearity="relu")
    init.zeros_(layer.bias)
    assert layer.weight is weight and weight.requires_grad and weight.dtype == np.float32
    assert not layer.bias.numpy().any()


def test_default_layer_inits_are_pytorchs():
    """Linear and Conv2d: W ~ U(+-1/sqrt(fan_in)) (kaiming_uniform a=sqrt(5)), b ~ U(+-1/sqrt(fan_in))."""
    for layer, fan_in in ((nn.Linear(1000, 400), 1000), (nn.Conv2d(32, 64, 5), 800)):
        bound = 1 / math.sqrt(fan_in)
        w, b = layer.weight.numpy(), layer.bias.numpy()
        assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
        assert abs(w.var() / (bound**2 / 3) - 1) < 0.05
    bn = nn.BatchNorm2d(5)
    np.testing.assert_array_equal(bn.weight.numpy(), np.ones(5))
    np.testing.assert_array_equal(bn.bias.numpy(), np.zeros(5))
