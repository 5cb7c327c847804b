"""Hardening: gradient hooks, cross-entropy targets and optimiser hyper-parameters refuse bad
values with an error that names them, instead of producing wrong numbers."""

import math

import numpy as np
import pytest

import minigrad as mg
from minigrad import optim
from minigrad.nn import functional as F
from minigrad.optim import lr_scheduler


# ---------------------------------------------------------------- gradient hooks
def wrong_shape(grad):
    return mg.tensor(np.ones(5, dtype=np.float32))


def wrong_dtype(grad):
    return mg.tensor(grad.numpy().astype(np.float64))


@pytest.mark.parametrize("hook", [wrong_shape, wrong_dtype])
def test_a_leaf_hook_returning_a_wrong_gradient_is_refused_by_name(hook):
    x = mg.randn(3, requires_grad=True)
    x.register_hook(hook)
    with pytest.raises(RuntimeError, match=hook.__name__):
        (x * 2).sum().backward()
    assert x.grad is None


@pytest.mark.parametrize("hook", [wrong_shape, wrong_dtype])
def test_an_intermediate_hook_returning_a_wrong_gradient_is_refused_by_name(hook):
    x = mg.randn(3, requires_grad=True)
    y = x * 2
    y.register_hook(hook)
    with pytest.raises(RuntimeError, match=hook.__name__):
        y.sum().backward()


def test_a_hook_returning_a_right_gradient_still_replaces_it():
    x = mg.randn(3, requires_grad=True)
    x.register_hook(lambda g: g * 3)
    (x * 2).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full(3, 6.0))


# ---------------------------------------------------------------- cross-entropy targets
@pytest.mark.parametrize(
    "target,words",
    [
        (np.array([True, False, True, False]), ["bool", "(4,)"]),
        (np.ones((4, 3), dtype=bool), ["bool", "(4, 3)"]),
        (np.array([0.0, 1.0, 2.0, 0.0]), ["float", "(4,)", "integer"]),
        (np.array([[0], [1], [2], [0]]), ["(4, 1)", "(4,)"]),
        (np.array([1, 2]), ["(2,)", "(4, 3)"]),
        (np.ones((4, 2), dtype=np.float32), ["(4, 2)", "(4, 3)"]),
    ],
)
def test_cross_entropy_refuses_targets_of_the_wrong_kind_or_shape(target, words):
    logits = mg.randn(4, 3, requires_grad=True)
    with pytest.raises(ValueError) as error:
        F.cross_entropy(logits, mg.tensor(target))
    for word in words:
        assert word in str(error.value)


# ---------------------------------------------------------------- optimiser hyper-parameters
MAKERS = {
    "SGD": lambda p, **kw: optim.SGD(p, **kw),
    "Adam": lambda p, **kw: optim.Adam(p, **kw),
    "AdamW": lambda p, **kw: optim.AdamW(p, **kw),
    "NAdam": lambda p, **kw: optim.NAdam(p, **kw),
    "RMSprop": lambda p, **kw: optim.RMSprop(p, **kw),
    "Adagrad": lambda p, **kw: optim.Adagrad(p, **kw),
    "Adadelta": lambda p, **kw: optim.Adadelta(p, **kw),
}
BAD = [math.nan, math.inf, -math.inf, -0.01]


@pytest.mark.parametrize("name", MAKERS)
@pytest.mark.parametrize("value", BAD)
def test_every_optimiser_refuses_a_bad_learning_rate_naming_it(name, value):
    with pytest.raises(ValueError, match=f"learning rate.*{value}"):
        MAKERS[name]([mg.randn(2, requires_grad=True)], lr=value)


@pytest.mark.parametrize(
    "name,option",
    [
        ("SGD", "momentum"),
        ("SGD", "weight_decay"),
        ("Adam", "eps"),
        ("Adam", "weight_decay"),
        ("RMSprop", "alpha"),
        ("RMSprop", "momentum"),
        ("Adagrad", "lr_decay"),
        ("Adadelta", "rho"),
        ("NAdam", "momentum_decay"),
    ],
)
@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_other_hyper_parameters_refuse_nan_and_inf(name, option, value):
    with pytest.raises(ValueError, match=str(value)):
        MAKERS[name]([mg.randn(2, requires_grad=True)], lr=0.1, **{option: value})


@pytest.mark.parametrize("betas", [(math.nan, 0.999), (0.9, math.inf), (-0.1, 0.9)])
def test_adam_refuses_bad_betas(betas):
    with pytest.raises(ValueError, match="beta"):
        optim.Adam([mg.randn(2, requires_grad=True)], betas=betas)


def test_a_parameter_group_added_later_is_checked():
    opt = optim.SGD([mg.randn(2, requires_grad=True)], lr=0.1)
    with pytest.raises(ValueError, match="nan"):
        opt.add_param_group({"params": [mg.randn(2, requires_grad=True)], "lr": math.nan})


def test_a_scheduler_cannot_set_a_bad_learning_rate():
    opt = optim.SGD([mg.randn(2, requires_grad=True)], lr=0.1)
    schedule = lr_scheduler.LambdaLR(opt, lambda epoch: 1.0 if epoch == 0 else math.nan)
    with pytest.raises(ValueError, match="learning rate.*nan"):
        schedule.step()


def test_a_loaded_state_dict_with_a_bad_learning_rate_is_refused():
    opt = optim.Adam([mg.randn(2, requires_grad=True)], lr=0.1)
    state = opt.state_dict()
    state["param_groups"][0]["lr"] = math.nan
    with pytest.raises(ValueError, match="learning rate.*nan"):
        opt.load_state_dict(state)
    assert opt.param_groups[0]["lr"] == 0.1
