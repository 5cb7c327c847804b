"""The optimisation lecture's claims on classic 2-D problems, measured with minigrad.optim."""

import numpy as np

import minigrad as mg
from minigrad import optim


def _quadratic(p):  # ill-conditioned: curvatures 1 and 50
    return 0.5 * (p[0] * p[0] + 50.0 * p[1] * p[1])


def _rosenbrock(p):
    return (1.0 - p[0]) ** 2 + 100.0 * (p[1] - p[0] * p[0]) ** 2


def _saddle(p):  # saddle at the origin; descends along x[1]
    return p[0] * p[0] - p[1] * p[1]


def _steps_to(fn, start, make_opt, target, tol, max_steps):
    """Steps until |p - target| < tol (max_steps + 1 when never)."""
    p = mg.tensor(np.asarray(start, np.float64), requires_grad=True)
    opt = make_opt([p])
    for step in range(1, max_steps + 1):
        opt.zero_grad()
        fn(p).backward()
        opt.step()
        if np.linalg.norm(p.data - target) < tol:
            return step
    return max_steps + 1


def test_momentum_and_nesterov_beat_sgd_on_ill_conditioned_quadratic():
    lr = 0.015  # below 2 / 50, the stability limit of the stiff direction
    args = (_quadratic, [10.0, 1.0], None, np.zeros(2), 1e-3, 5000)
    plain = _steps_to(args[0], args[1], lambda p: optim.SGD(p, lr=lr), *args[3:])
    heavy = _steps_to(args[0], args[1], lambda p: optim.SGD(p, lr=lr, momentum=0.9), *args[3:])
    nag = _steps_to(args[0], args[1], lambda p: optim.SGD(p, lr=lr, momentum=0.9, nesterov=True), *args[3:])
    assert plain <= 5000, "plain SGD must converge here for the comparison to mean anything"
    assert heavy < plain / 3 and nag < plain / 3, (plain, heavy, nag)


def test_momentum_and_nesterov_beat_sgd_on_rosenbrock():
    lr = 1e-3
    args = (_rosenbrock, [-1.0, 1.0], None, np.ones(2), 1e-2, 20000)
    plain = _steps_to(args[0], args[1], lambda p: optim.SGD(p, lr=lr), *args[3:])
    heavy = _steps_to(args[0], args[1], lambda p: optim.SGD(p, lr=lr, momentum=0.9), *args[3:])
    nag = _steps_to(args[0], args[1], lambda p: optim.SGD(p, lr=lr, momentum=0.9, nesterov=True), *args[3:])
    assert plain <= 20000
    assert heavy < plain and nag < plain, (plain, heavy, nag)


def test_sgd_stalls_at_the_saddle_and_adaptive_methods_leave_it():
    """Start almost on the saddle: the escaping coordinate's gradient is 2e-8. Plain SGD
    multiplies it by (1 + 2 lr) per step and is still within 1e-3 of the saddle after 100
    steps; AdaGrad, RMSProp and Adam rescale it to ~lr per step and leave."""
    start = [1.0, 1e-8]
    lr = 0.01

    def escaped(make_opt):
        p = mg.tensor(np.asarray(start, np.float64), requires_grad=True)
        opt = make_opt([p])
        for _ in range(100):
            opt.zero_grad()
            _saddle(p).backward()
            opt.step()
        return abs(p.data[1])

    assert escaped(lambda p: optim.SGD(p, lr=lr)) < 1e-3
    assert escaped(lambda p: optim.SGD(p, lr=lr, momentum=0.9)) < 1e-3
    for make in (lambda p: optim.Adagrad(p, lr=0.1), lambda p: optim.RMSprop(p, lr=lr), lambda p: optim.Adam(p, lr=lr)):
        assert escaped(make) > 0.1
