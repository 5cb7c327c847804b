"""The Optimizer contract: groups, state dicts, zero_grad, closures, versions, validation."""

import numpy as np
import pytest

import minigrad as mg
from minigrad import optim

from problems import train

OPTIMIZERS = [
    (optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True)),
    (optim.Adagrad, dict(lr=0.1)),
    (optim.RMSprop, dict(lr=1e-3, centered=True, momentum=0.5)),
    (optim.Adadelta, dict()),
    (optim.Adam, dict(lr=2e-3, amsgrad=True)),
    (optim.AdamW, dict(lr=2e-3)),
    (optim.NAdam, dict(lr=2e-3)),
]


def _mlp(seed=0):
    rng = np.random.default_rng(seed)
    x = mg.tensor(rng.standard_normal((16, 5)).astype(np.float32))
    y = rng.integers(0, 3, 16)
    params = [
        mg.tensor(rng.standard_normal(s).astype(np.float32) * 0.5, requires_grad=True)
        for s in ((5, 8), (8,), (8, 3), (3,))
    ]
    return x, y, params


def _step(opt, x, y, params):
    w1, b1, w2, b2 = params
    opt.zero_grad()
    loss = mg.nn.functional.cross_entropy((x @ w1 + b1).relu() @ w2 + b2, y)
    loss.backward()
    opt.step()


@pytest.mark.parametrize("cls,kwargs", OPTIMIZERS, ids=[c.__name__ for c, _ in OPTIMIZERS])
def test_state_dict_round_trip_continues_bit_for_bit(cls, kwargs):
    x, y, params = _mlp()
    opt = cls([{"params": params[:2]}, {"params": params[2:], "lr": 0.01}], **kwargs)
    for _ in range(5):
        _step(opt, x, y, params)
    saved_params = [p.data.copy() for p in params]
    saved = opt.state_dict()
    for _ in range(5):
        _step(opt, x, y, params)
    expected = [p.data.copy() for p in params]

    _, _, fresh = _mlp()
    for p, s in zip(fresh, saved_params):
        p.data[...] = s
    resumed = cls([{"params": fresh[:2]}, {"params": fresh[2:], "lr": 0.5}], **kwargs)
    resumed.load_state_dict(saved)
    assert resumed.param_groups[1]["lr"] == 0.01
    for _ in range(5):
        _step(resumed, x, y, fresh)
    for p, e in zip(fresh, expected):
        np.testing.assert_array_equal(p.data, e)


def test_state_dict_is_a_copy():
    _, _, params = _mlp()
    opt = optim.Adam(params)
    for p in params:
        p.grad = mg.ones_like(p)
    opt.step()
    saved = opt.state_dict()
    opt.step()
    assert saved["state"][0]["step"] == 1
    assert not np.array_equal(saved["state"][0]["exp_avg"], opt.state[params[0]]["exp_avg"])


def test_load_state_dict_with_wrong_shapes_raises():
    _, _, params = _mlp()
    opt = optim.Adam(params)
    for p in params:
        p.grad = mg.ones_like(p)
    opt.step()
    saved = opt.state_dict()
    other = [mg.zeros(6, 8, requires_grad=True), *[mg.zeros_like(p, requires_grad=True) for p in params[1:]]]
    with pytest.raises(ValueError, match=r"exp_avg.*shape \(5, 8\).*\(6, 8\)"):
        optim.Adam(other).load_state_dict(saved)
    with pytest.raises(ValueError, match="parameter groups"):
        optim.Adam([{"params": params[:2]}, {"params": params[2:]}]).load_state_dict(saved)
    with pytest.raises(ValueError, match="has 2 parameters"):
        optim.Adam(params[:2]).load_state_dict(saved)


@pytest.mark.parametrize(
    "make",
    [
        lambda p: optim.SGD(p, lr=-0.1),
        lambda p: optim.SGD(p, lr=0.1, momentum=-0.5),
        lambda p: optim.SGD(p, lr=0.1, nesterov=True),
        lambda p: optim.Adam(p, betas=(1.0, 0.999)),
        lambda p: optim.Adam(p, betas=(0.9, -0.1)),
        lambda p: optim.Adam(p, eps=0.0),
        lambda p: optim.AdamW(p, weight_decay=-1e-2),
        lambda p: optim.Adagrad(p, eps=-1e-10),
        lambda p: optim.Adagrad(p, lr_decay=-1.0),
        lambda p: optim.RMSprop(p, alpha=1.5),
        lambda p: optim.RMSprop(p, eps=0.0),
        lambda p: optim.Adadelta(p, rho=1.1),
        lambda p: optim.NAdam(p, momentum_decay=-1.0),
        lambda p: optim.Adam([{"params": p[:1]}, {"params": p[1:], "lr": -1.0}]),
    ],
)
def test_invalid_hyperparameters_raise(make):
    _, _, params = _mlp()
    with pytest.raises(ValueError):
        make(params)


def test_parameter_groups_are_checked():
    _, _, params = _mlp()
    with pytest.raises(ValueError, match="empty"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.SGD([{"params": params}, {"params": params[:1]}], lr=0.1)
    with pytest.raises(ValueError, match="more than once"):
        optim.SGD([params[0], params[0]], lr=0.1)
    with pytest.raises(TypeError, match="set"):
        optim.SGD(set(params), lr=0.1)
    with pytest.raises(TypeError, match="Tensors"):
        optim.SGD([np.zeros(3)], lr=0.1)
    opt = optim.SGD(params[:2], lr=0.1, momentum=0.9)
    opt.add_param_group({"params": params[2:], "lr": 0.01})
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.01]
    assert opt.param_groups[1]["momentum"] == 0.9


def test_zero_grad_and_skipped_parameters():
    _, _, params = _mlp()
    opt = optim.SGD(params, lr=0.5)
    params[0].grad = mg.ones_like(params[0])
    before = [p.data.copy() for p in params]
    opt.step()
    np.testing.assert_allclose(params[0].data, before[0] - 0.5, rtol=1e-6)
    for p, b in zip(params[1:], before[1:]):  # no gradient: untouched
        np.testing.assert_array_equal(p.data, b)
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(params[0].grad.data, 0)
    opt.zero_grad()
    assert params[0].grad is None


def test_step_bumps_versions_so_the_tape_notices():
    w = mg.tensor(np.ones(3, np.float32), requires_grad=True)
    loss = (w * w).sum()  # saves w for backward
    opt = optim.SGD([w], lr=0.1)
    w.grad = mg.ones_like(w)
    version = w._version[0]
    opt.step()
    assert w._version[0] == version + 1
    with pytest.raises(RuntimeError, match="modified in place"):
        loss.backward()


def test_closure_is_evaluated_with_grad_and_returned():
    _, _, params = _mlp()
    opt = optim.SGD(params[:1], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (params[0] * params[0]).sum()
        loss.backward()
        return loss

    with mg.no_grad():
        loss = opt.step(closure)
    assert loss.item() > 0 and params[0].grad is not None


def test_bad_gradients_raise_before_touching_memory():
    w = mg.tensor(np.ones((3, 4), np.float32), requires_grad=True)
    opt = optim.Adam([w])
    w.grad = mg.Tensor(np.ones((4, 3), np.float32))
    with pytest.raises(ValueError, match=r"grads\[0\] has shape \(4, 3\) but params\[0\] has shape \(3, 4\)"):
        opt.step()
    w.grad = mg.Tensor(np.ones((3, 4), np.float64))
    with pytest.raises(TypeError, match=r"grads\[0\] must be float32"):
        opt.step()
    np.testing.assert_array_equal(w.data, 1)


def test_mixed_dtypes_in_one_group():
    a = mg.tensor(np.ones(3, np.float32), requires_grad=True)
    b = mg.tensor(np.ones(3, np.float64), requires_grad=True)
    opt = optim.Adam([a, b], lr=0.1)
    a.grad, b.grad = mg.ones_like(a), mg.ones_like(b)
    opt.step()
    np.testing.assert_allclose(a.data, 0.9, rtol=1e-6)
    np.testing.assert_allclose(b.data, 1 - 0.1 / (1 + 1e-8), rtol=1e-14)


def test_adam_without_bias_correction_is_the_lecture_adam():
    """bias_correction=False: m, v start at zero and are used as they are, so the first step
    is lr (1 - beta1) g / (sqrt(1 - beta2) |g|) ~ 3.16 lr, not lr."""
    ours = train(
        "minigrad", "least_squares", optim.Adam, dict(lr=1e-3, bias_correction=False), [{}], np.float64, steps=50
    )
    rng_data = __import__("problems").least_squares_data(np.float64)
    (a, y), start = rng_data
    w, b = start["w"].copy(), start["b"].copy()
    m = [np.zeros_like(w), np.zeros_like(b)]
    v = [np.zeros_like(w), np.zeros_like(b)]
    for _ in range(50):
        r = a @ w + b - y
        grads = [2 * a.T @ r / len(y), np.asarray([2 * r.mean()])]
        for i, (p, g) in enumerate(zip((w, b), grads)):
            m[i] = 0.9 * m[i] + 0.1 * g
            v[i] = 0.999 * v[i] + 0.001 * g * g
            p -= 1e-3 * m[i] / (np.sqrt(v[i]) + 1e-8)
    np.testing.assert_allclose(ours["w"], w, rtol=1e-10)
    np.testing.assert_allclose(ours["b"], b, rtol=1e-10)
    first = optim.Adam([mg.tensor(np.zeros(1), requires_grad=True)], lr=1.0, bias_correction=False)
    p = first.param_groups[0]["params"][0]
    p.grad = mg.tensor(np.asarray([0.5]))
    first.step()
    np.testing.assert_allclose(p.data, [-0.1 / np.sqrt(0.001)], rtol=1e-6)
