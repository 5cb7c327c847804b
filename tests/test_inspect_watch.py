"""minigrad.inspect.watch: per-layer statistics checked against numbers computed by hand, and
the lectures' alarms firing on nets built to fail (dead ReLUs, saturated tanh, vanishing and
exploding gradients, learning rates far off) and staying silent on healthy ones."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import inspect, nn, optim


def _digits(n=256, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 64)).astype(np.float32)
    y = (x[:, :10].argmax(1)).astype(np.int64)  # learnable: the largest of the first ten inputs
    return x, y


def _mlp(activation, depth=3, width=64, weight_std=None, bias=None, out=10):
    layers, fan = [], 64
    for _ in range(depth):
        linear = nn.Linear(fan, width)
        if weight_std is not None:
            nn.init.normal_(linear.weight, 0.0, weight_std)
        if bias is not None:
            linear.bias.data[:] = bias
        layers += [linear, activation()]
        fan = width
    layers.append(nn.Linear(fan, out))
    return nn.Sequential(*layers)


def _train(model, optimizer, steps=12, every=4, **thresholds):
    x, y = _digits()
    rng = np.random.default_rng(1)
    with inspect.watch(model, every=every, **thresholds) as w:
        for _ in range(steps):
            pick = rng.choice(len(x), 32, replace=False)
            loss = F.cross_entropy(model(mg.tensor(x[pick])), mg.tensor(y[pick]))
            optimizer.zero_grad()  # before the next forward, as most loops do: the watch keeps its own copy
            loss.backward()
            optimizer.step()
    return w


def _kinds(w):
    return sorted({(a.kind, a.layer) for a in w.alerts})


def test_statistics_are_the_numbers_computed_by_hand():
    mg.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
    x = mg.tensor(np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32))
    w = inspect.watch(model, every=1)
    before = [p.data.copy() for p in model.parameters()]
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    out = model(x)
    hidden = x.data @ before[0].T + before[1]
    (out * mg.tensor(np.arange(15, dtype=np.float32).reshape(5, 3))).sum().backward()
    grads = [p.grad.data.copy() for p in model.parameters()]
    optimizer.step()
    w.close()
    (step, (linear, relu)) = w.history[0]
    assert step == 1 and (linear.layer, relu.layer) == ("0", "1")
    np.testing.assert_allclose([linear.mean, linear.std], [hidden.mean(), hidden.std()], rtol=1e-5)
    relu_out = np.maximum(hidden, 0)
    np.testing.assert_allclose([relu.mean, relu.std], [relu_out.mean(), relu_out.std()], rtol=1e-5)
    assert relu.zero_fraction == np.mean(relu_out == 0) and relu.applies_relu and relu.grad_norm is None
    grad_norm = np.sqrt(sum(np.sum(g.astype(np.float64) ** 2) for g in grads))
    weight_norm = np.sqrt(sum(np.sum(b.astype(np.float64) ** 2) for b in before))
    np.testing.assert_allclose(linear.grad_norm, grad_norm, rtol=1e-6)
    np.testing.assert_allclose(linear.update_ratio, 0.1 * grad_norm / weight_norm, rtol=1e-4)  # SGD: dw = lr * g


def test_dead_relus_fire_with_the_fix():
    mg.manual_seed(0)
    model = _mlp(nn.ReLU, bias=-10.0)  # every pre-activation far below zero
    w = _train(model, optim.SGD(model.parameters(), lr=0.05))
    dead = [a for a in w.alerts if a.kind == "dead_relu"]
    assert [a.layer for a in dead] == ["1", "3", "5"]
    assert all(a.value == 1.0 and a.count == 3 and "He" in a.message for a in dead)
    # nothing reaches the first layers, so their gradient vanishes too
    assert ("vanishing_gradient", "0") in _kinds(w)


def test_saturating_tanh_with_unit_normal_weights_fires():
    mg.manual_seed(0)
    model = _mlp(nn.Tanh, weight_std=1.0)
    w = _train(model, optim.SGD(model.parameters(), lr=0.01))
    saturated = [a for a in w.alerts if a.kind == "saturation"]
    assert [a.layer for a in saturated] == ["1", "3", "5"] and all(a.value > 0.5 for a in saturated)
    assert "Xavier" in saturated[0].message
    assert not any(a.kind == "dead_relu" for a in w.alerts)


@pytest.mark.parametrize("activation", [nn.ReLU, nn.Tanh])
def test_healthy_nets_stay_silent(activation):
    mg.manual_seed(0)
    model = _mlp(activation)
    w = _train(model, optim.SGD(model.parameters(), lr=0.05, momentum=0.9))
    assert w.alerts == [] and len(w.history) == 3
    assert "no alerts" in w.report()


def test_vanishing_gradient_in_a_deep_sigmoid_net():
    mg.manual_seed(0)
    model = _mlp(nn.Sigmoid, depth=8, weight_std=0.05)
    w = _train(model, optim.SGD(model.parameters(), lr=0.05), steps=2, every=1)
    vanishing = [a for a in w.alerts if a.kind == "vanishing_gradient"]
    assert len(vanishing) == 1 and vanishing[0].layer == "0" and vanishing[0].value < 1e-5


def test_exploding_gradient_when_normalisation_meets_tiny_weights():
    mg.manual_seed(0)
    first = nn.Linear(64, 64, bias=False)
    nn.init.normal_(first.weight, 0.0, 1e-5)  # layer norm undoes the scale forward, so backward multiplies by 1e5
    model = nn.Sequential(first, nn.LayerNorm(64, eps=1e-12), nn.ReLU(), nn.Linear(64, 10))
    w = _train(model, optim.SGD(model.parameters(), lr=1e-9), steps=1, every=1)
    exploding = [a for a in w.alerts if a.kind == "exploding_gradient"]
    assert len(exploding) == 1 and exploding[0].layer == "0" and exploding[0].value > 1e3


def test_update_ratio_far_from_a_thousandth_fires_both_ways():
    mg.manual_seed(0)
    model = _mlp(nn.ReLU)
    high = _train(model, optim.SGD(model.parameters(), lr=5.0), steps=1, every=1)
    assert {a.layer for a in high.alerts if a.kind == "update_ratio"} == {"0", "2", "4", "6"}
    assert "too high" in high.alerts[0].message
    model = _mlp(nn.ReLU)
    low = _train(model, optim.SGD(model.parameters(), lr=1e-7), steps=1, every=1)
    assert all(a.kind == "update_ratio" and "too low" in a.message for a in low.alerts) and len(low.alerts) == 4


def test_fit_callback_on_lenet5_and_resnet8_and_hooks_go_away(tmp_path):
    for model, shape in ((mg.models.lenet5(), (1, 28, 28)), (mg.models.resnet8(), (3, 16, 16))):
        rng = np.random.default_rng(0)
        data = mg.data.TensorDataset(
            mg.tensor(rng.standard_normal((48, *shape)).astype(np.float32)), mg.tensor(rng.integers(0, 10, 48))
        )
        w = inspect.watch(model, every=2)
        mg.train.fit(
            model,
            optim.Adam(model.parameters(), lr=1e-3),
            F.cross_entropy,
            mg.data.DataLoader(data, batch_size=8),
            val_loader=mg.data.DataLoader(data, batch_size=16),  # evaluation passes are not sampled
            epochs=1,
            callbacks=[w],
            progress=False,
        )
        assert [step for step, _ in w.history] == [1, 3, 5]
        layers = [s.layer for s in w.history[-1][1]]
        convs = [name for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]
        assert set(convs) <= set(layers) and all(s.grad_norm > 0 for s in w.history[-1][1] if s.has_matrix)
        w.plot(tmp_path / "h.png")
        assert (tmp_path / "h.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        w.close()
        assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())
        assert not any(p._hooks for p in model.parameters())
    # ResNet's batch norms apply the ReLU inside (relu=True): the watch knows
    assert any(s.applies_relu and s.kind == "BatchNorm2d" for s in w.history[-1][1])


def test_bad_arguments_are_refused():
    with pytest.raises(TypeError, match="expected a minigrad Module"):
        inspect.watch(lambda x: x)
    with pytest.raises(ValueError, match="every must be a positive whole number"):
        inspect.watch(nn.Linear(2, 2), every=0)
    with pytest.raises(ValueError, match="every must be a positive whole number"):
        inspect.watch(nn.Linear(2, 2), every=float("nan"))
    with pytest.raises(ValueError, match="update_band"):
        inspect.watch(nn.Linear(2, 2), update_band=(1e-1, 1e-5))
    with pytest.raises(ValueError, match="no weight layers or activations"):
        inspect.watch(nn.Flatten())
    with pytest.raises(ValueError, match="no training step sampled"):
        inspect.watch(nn.Linear(2, 2)).plot("x.png")


def test_train_watch_prints_the_statistics_and_draws_histograms(tmp_path, capsys):
    pytest.importorskip("sklearn")
    from minigrad import cli

    cli.main(["train", "--watch", "2", "--epochs", "1", "--train-size", "200", "--out", str(tmp_path / "run")])
    printed = capsys.readouterr().out
    assert "learning dynamics, one training step in 2:" in printed
    assert "grad norm" in printed and "0.weight" not in printed  # layers by module path: "0", not parameters
    assert (tmp_path / "run" / "watch.png").read_bytes()[:4] == b"\x89PNG"
