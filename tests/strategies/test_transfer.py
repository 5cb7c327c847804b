"""Transfer learning: frozen parameters stay put and get no gradient; groups get their own lr."""

import numpy as np
import pytest

import minigrad as mg
from minigrad import models, nn, optim
from minigrad.nn import functional as F
from minigrad.strategies.transfer import freeze, param_groups, replace_head, trainable_parameters, unfreeze


def _batch(n=8):
    rng = np.random.default_rng(1)
    return mg.Tensor(rng.standard_normal((n, 12)).astype(np.float32)), mg.Tensor(rng.integers(0, 3, n))


def test_frozen_parameters_get_no_gradient_and_do_not_change():
    model = models.mlp([12, 16, 16, 3])
    freeze(model[:2])
    before = {k: np.array(v.data) for k, v in model.state_dict().items()}
    optimizer = optim.SGD(model.parameters(), lr=0.5, momentum=0.9, weight_decay=0.1)
    x, y = _batch()
    for _ in range(3):
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        assert model[0].weight.grad is None and model[0].bias.grad is None
        assert model[2].weight.grad is not None
        optimizer.step()
    after = model.state_dict()
    for key in ("0.weight", "0.bias"):
        np.testing.assert_array_equal(after[key].data, before[key])
    for key in ("2.weight", "4.weight"):
        assert not np.allclose(after[key].data, before[key])
    unfreeze(model)
    assert len(trainable_parameters(model)) == 6


def test_frozen_lower_layers_still_pass_gradient_to_the_input():
    model = models.mlp([12, 16, 3])
    freeze(model)
    x = mg.Tensor(_batch()[0].data, requires_grad=True)
    F.cross_entropy(model(x), _batch()[1]).backward()
    assert x.grad is not None and np.abs(x.grad.data).sum() > 0
    assert all(p.grad is None for p in model.parameters())


def test_param_groups_give_each_part_its_learning_rate():
    model = models.mlp([12, 16, 16, 3])
    freeze(model[0])
    groups = param_groups(model, {model[2]: 1e-3}, lr=0.1)
    assert [g["lr"] for g in groups] == [1e-3, 0.1]
    assert [id(p) for p in groups[0]["params"]] == [id(model[2].weight), id(model[2].bias)]
    assert [id(p) for p in groups[1]["params"]] == [id(model[4].weight), id(model[4].bias)]  # frozen model[0] left out
    optimizer = optim.SGD(groups, lr=0.1)
    x, y = _batch()
    weights = [np.array(model[i].weight.data) for i in (2, 4)]
    F.cross_entropy(model(x), y).backward()
    grads = [np.array(model[i].weight.grad.data) for i in (2, 4)]
    optimizer.step()
    # plain SGD: w <- w - lr * g, with each group's own lr
    np.testing.assert_allclose(model[2].weight.data, weights[0] - 1e-3 * grads[0], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(model[4].weight.data, weights[1] - 0.1 * grads[1], rtol=1e-6, atol=1e-7)


def test_param_groups_refuse_a_parameter_under_two_rates():
    model = models.mlp([12, 16, 3])
    with pytest.raises(ValueError, match="two learning rates"):
        param_groups(model, {model[0]: 1e-3, model: 1e-2}, lr=0.1)


def test_replace_head_keeps_position_and_is_trainable():
    model = models.lenet5()
    freeze(model)
    old = replace_head(model, nn.Linear(84, 5))
    assert isinstance(old, nn.Linear) and old.weight.shape == (10, 84)
    assert list(dict(model.named_children())) == [str(i) for i in range(12)]
    assert model(mg.zeros((2, 1, 28, 28))).shape == (2, 5)
    assert [id(p) for p in trainable_parameters(model)] == [id(model[11].weight), id(model[11].bias)]
    resnet = models.ResNet(1, widths=(4, 4, 8))
    replace_head(resnet, nn.Linear(8, 3))
    assert resnet.fc.weight.shape == (3, 8)
    with pytest.raises(ValueError, match="no sub-module 'head'"):
        replace_head(resnet, nn.Linear(8, 3), name="head")


def test_the_strategies_old_import_paths_give_the_same_modules():
    import importlib

    for old, new in [
        ("minigrad.transfer", "minigrad.strategies.transfer"),
        ("minigrad.tune", "minigrad.strategies.tune"),
        ("minigrad.multitask", "minigrad.strategies.multitask"),
        ("minigrad.distill", "minigrad.strategies.distill"),
        ("minigrad.adversarial", "minigrad.strategies.adversarial"),
        ("minigrad.data.curriculum", "minigrad.strategies.curriculum"),
    ]:
        assert importlib.import_module(old) is importlib.import_module(new), old
    from minigrad.transfer import freeze as old_freeze

    assert old_freeze is freeze
