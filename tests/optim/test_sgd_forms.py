"""The lecture's momentum (v <- rho v - eta g, theta <- theta + v) and PyTorch's
(b <- rho b + g, theta <- theta - eta b) are one trajectory while eta is constant, and part
when eta changes."""

import numpy as np

import minigrad as mg
from minigrad import optim


def _grad(a, y, w):
    return a.T @ (a @ w - y) / len(y)


def _runs(lrs):
    rng = np.random.default_rng(3)
    a, y = rng.standard_normal((20, 4)), rng.standard_normal(20)
    w0 = rng.standard_normal(4)
    w = mg.tensor(w0, requires_grad=True)
    opt = optim.SGD([w], lr=lrs[0], momentum=0.9)
    lecture, v = w0.copy(), np.zeros(4)
    for lr in lrs:
        opt.param_groups[0]["lr"] = lr
        w.grad = mg.tensor(_grad(a, y, w.data))
        opt.step()
        v = 0.9 * v - lr * _grad(a, y, lecture)
        lecture = lecture + v
    return w.data, lecture


def test_same_trajectory_with_constant_lr():
    ours, lecture = _runs([0.05] * 100)
    np.testing.assert_allclose(ours, lecture, rtol=1e-12, atol=1e-12)


def test_trajectories_part_when_lr_changes():
    ours, lecture = _runs([0.05] * 10 + [0.005] * 10)
    assert np.max(np.abs(ours - lecture)) > 1e-3
