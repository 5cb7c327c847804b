"""Every schedule's learning-rate sequence equals PyTorch's over 100 epochs (two groups)."""

import math

import numpy as np
import pytest

import minigrad as mg
from minigrad import optim
from minigrad.optim import lr_scheduler as ours

torch = pytest.importorskip("torch", reason="torch.optim.lr_scheduler is the reference")
theirs = torch.optim.lr_scheduler

SCHEDULES = [
    ("StepLR", dict(step_size=7, gamma=0.5)),
    ("MultiStepLR", dict(milestones=[10, 30, 30, 75], gamma=0.3)),
    ("ExponentialLR", dict(gamma=0.95)),
    ("CosineAnnealingLR", dict(T_max=30, eta_min=1e-4)),
    ("LinearLR", dict(start_factor=0.1, end_factor=1.0, total_iters=20)),
    ("LinearLR", dict(start_factor=1.0, end_factor=0.2, total_iters=60)),
    ("LambdaLR", dict(lr_lambda=lambda e: 1.0 / (1 + 0.1 * e))),
]


def _sequence(lib, name, kwargs, epochs=100):
    if lib == "minigrad":
        params = [mg.zeros(2, requires_grad=True), mg.zeros(3, requires_grad=True)]
        opt = optim.SGD([{"params": params[:1]}, {"params": params[1:], "lr": 0.03}], lr=0.1, momentum=0.9)
        sched = getattr(ours, name)(opt, **kwargs)
    else:
        params = [torch.zeros(2, requires_grad=True), torch.zeros(3, requires_grad=True)]
        opt = torch.optim.SGD([{"params": params[:1]}, {"params": params[1:], "lr": 0.03}], lr=0.1, momentum=0.9)
        sched = getattr(theirs, name)(opt, **kwargs)
    lrs = [[g["lr"] for g in opt.param_groups]]
    for _ in range(epochs):
        opt.step()
        sched.step()
        lrs.append([g["lr"] for g in opt.param_groups])
    assert lrs[-1] == sched.get_last_lr()
    return lrs, sched, opt


@pytest.mark.parametrize("name,kwargs", SCHEDULES, ids=[s[0] + str(i) for i, s in enumerate(SCHEDULES)])
def test_sequence_equals_torch(name, kwargs):
    mine, _, _ = _sequence("minigrad", name, kwargs)
    ref, _, _ = _sequence("torch", name, kwargs)
    assert mine == ref
    assert len({tuple(x) for x in mine}) > 2  # the rate really changes


@pytest.mark.parametrize("name,kwargs", SCHEDULES[:5], ids=[s[0] for s in SCHEDULES[:5]])
def test_state_dict_resumes(name, kwargs):
    full, _, _ = _sequence("minigrad", name, kwargs, epochs=40)
    _, sched, opt = _sequence("minigrad", name, kwargs, epochs=20)
    saved_sched, saved_opt = sched.state_dict(), opt.state_dict()
    params = [mg.zeros(2, requires_grad=True), mg.zeros(3, requires_grad=True)]
    opt2 = optim.SGD([{"params": params[:1]}, {"params": params[1:], "lr": 0.03}], lr=0.1, momentum=0.9)
    opt2.load_state_dict(saved_opt)
    sched2 = getattr(ours, name)(opt2, **kwargs, last_epoch=19)
    sched2.load_state_dict(saved_sched)
    rest = []
    for _ in range(20):
        sched2.step()
        rest.append([g["lr"] for g in opt2.param_groups])
    assert rest == full[21:]


def test_reduce_on_plateau_equals_torch():
    metrics = [1.0, 0.9, 0.85, 0.85, 0.86, 0.87, 0.84, 0.84, 0.84, 0.84, 0.9] * 9 + [0.5]
    seqs = []
    for lib, mod in (("minigrad", ours), ("torch", theirs)):
        p = mg.zeros(2, requires_grad=True) if lib == "minigrad" else torch.zeros(2, requires_grad=True)
        opt = (optim if lib == "minigrad" else torch.optim).SGD([p], lr=1.0)
        sched = mod.ReduceLROnPlateau(opt, factor=0.5, patience=2, cooldown=1, min_lr=1e-3, threshold=1e-3)
        seq = []
        for m in metrics:
            sched.step(m)
            seq.append(opt.param_groups[0]["lr"])
        seqs.append(seq)
        if lib == "minigrad":
            state = sched.state_dict()
            assert state["num_bad_epochs"] == sched.num_bad_epochs and "optimizer" not in state
    assert seqs[0] == seqs[1]
    assert min(seqs[0]) == 1e-3 and seqs[0][0] == 1.0


def test_switch_optimizer_hands_over_at_the_chosen_epoch():
    w = mg.tensor(np.asarray([3.0, -2.0]), requires_grad=True)
    switch = optim.SwitchOptimizer.adam_then_sgd([w], adam_lr=0.1, sgd_lr=0.05, switch_epoch=3)
    assert isinstance(switch.active, optim.Adam)
    for epoch in range(6):
        for _ in range(5):
            switch.zero_grad()
            (w * w).sum().backward()
            before = w.data.copy()
            switch.step()
        if epoch < 3:
            assert isinstance(switch.active, optim.Adam)
        switched = switch.epoch_end()
        assert switched == (epoch == 2)
    assert isinstance(switch.active, optim.SGD) and switch.switched_at == 3
    # the SGD step continues from the parameters Adam left: theta <- theta - lr * 2 theta
    # on its first step (fresh momentum buffer b = g)
    assert switch.second.state[w]["momentum_buffer"] is not None
    assert np.all(np.abs(w.data) < np.abs(before))


def test_switch_optimizer_switches_when_progress_stalls():
    w = mg.tensor(np.asarray([1.0]), requires_grad=True)
    switch = optim.SwitchOptimizer.adam_then_sgd([w], patience=2, threshold=0.01)
    losses = [1.0, 0.5, 0.499, 0.4985, 0.3]
    flags = [switch.epoch_end(loss) for loss in losses]
    assert flags == [False, False, False, True, False] and switch.switched_at == 4
    with pytest.raises(ValueError):
        optim.SwitchOptimizer(optim.SGD([w]), optim.Adam([w]))
    with pytest.raises(ValueError, match="same parameters"):
        optim.SwitchOptimizer(optim.SGD([w]), optim.Adam([mg.zeros(1, requires_grad=True)]), switch_epoch=1)


def test_cosine_closed_form_documented():
    _, sched, opt = _sequence("minigrad", "CosineAnnealingLR", dict(T_max=30, eta_min=1e-4), epochs=17)
    expected = 1e-4 + (0.1 - 1e-4) * (1 + math.cos(math.pi * 17 / 30)) / 2
    assert opt.param_groups[0]["lr"] == pytest.approx(expected, rel=1e-12)
