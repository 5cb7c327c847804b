"""The fused optimiser kernels against their plain reference twins (_C.ref.*): every ISA path
(each in its own process, MINIGRAD_ISA), odd sizes, many tensors per call, 1 thread vs all,
and bad arguments rejected before any memory is touched."""

import os

import numpy as np
import pytest

from minigrad import _C

from isolated import run_python

SIZES = [1, 2, 7, 13, 31, 63, 65, 127, 257, 40000, 3]  # the big one makes the call multithreaded


# (kernel, state names, required-state flags from options, scalar options)
def _cases():
    sgd = dict(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01, nesterov=False, maximize=False, first_step=False)
    yield "sgd_step", 1, dict(sgd)
    yield "sgd_step", 1, dict(sgd, dampening=0.0, nesterov=True, maximize=True)
    yield "sgd_step", 1, dict(sgd, first_step=True)
    yield "sgd_step", 0, dict(sgd, momentum=0.0)
    yield "adagrad_step", 1, dict(clr=0.05, eps=1e-10, weight_decay=0.1, maximize=False)
    rms = dict(lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False, maximize=False)
    yield "rmsprop_step", 1, rms
    yield "rmsprop_step", 3, dict(rms, centered=True, momentum=0.9, weight_decay=0.1)
    yield "rmsprop_step", 3, dict(rms, centered=True, momentum=0.9, alpha=0.3, maximize=True)
    yield "adadelta_step", 2, dict(lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.1, maximize=False)
    adam = dict(
        lr=1e-3,
        beta1=0.9,
        beta2=0.999,
        eps=1e-8,
        weight_decay=0.0,
        step_size=1e-3 / 0.271,
        bias_correction2_sqrt=0.0547,
        decoupled_weight_decay=False,
        amsgrad=False,
        maximize=False,
    )
    yield "adam_step", 2, adam
    yield "adam_step", 3, dict(adam, amsgrad=True, weight_decay=0.1)
    yield "adam_step", 3, dict(adam, amsgrad=True, weight_decay=0.1, decoupled_weight_decay=True, beta1=0.3)
    yield (
        "nadam_step",
        2,
        dict(
            lr=2e-3,
            beta1=0.9,
            beta2=0.999,
            eps=1e-8,
            weight_decay=0.1,
            bias_correction2=0.003,
            grad_coef=-0.01,
            avg_coef=-0.05,
            decoupled_weight_decay=True,
            maximize=False,
        ),
    )


CASES = list(_cases())


def _state_args(name, n_states, arrays):
    """Positional state lists for each kernel (None where the options need none)."""
    slots = {"sgd_step": 1, "adagrad_step": 1, "rmsprop_step": 3, "adadelta_step": 2, "adam_step": 3, "nadam_step": 2}[
        name
    ]
    out = [None] * slots
    if name == "rmsprop_step" and n_states == 3:
        out = arrays[:3]
    else:
        out[:n_states] = arrays[:n_states]
    return out


def _inputs(dtype, seed):
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(n).astype(dtype) for n in SIZES]
    grads = [rng.standard_normal(n).astype(dtype) for n in SIZES]
    states = [[np.abs(rng.standard_normal(n)).astype(dtype) + 0.5 for n in SIZES] for _ in range(3)]
    for s in states[1]:  # RMSProp's centered average must stay below sqrt(square average)
        s *= 0.1
    return params, grads, states


def run_all_cases(dtype):
    """Runs every case through the fast kernel and the reference; returns the worst error
    relative to each tensor's largest magnitude (FMAs in the fast paths change roundings)."""
    worst = 0.0
    for i, (name, n_states, scalars) in enumerate(CASES):
        results = []
        for module in (_C, _C.ref):
            params, grads, states = _inputs(dtype, i)
            for _ in range(3):
                getattr(module, name)(params, grads, *_state_args(name, n_states, states), **scalars)
            results.append(params + [s for k in range(n_states) for s in states[k]])
        for a, b in zip(*results):
            # relative to the tensor's scale: p - lr g may cancel to ~0 in single elements
            err = np.max(np.abs(a - b)) / np.max(np.abs(b))
            assert np.all(np.isfinite(a)) and np.all(np.isfinite(b)), name
            worst = max(worst, float(err))
    return worst


TOL = {np.float32: 1e-5, np.float64: 1e-12}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fast_equals_reference(dtype):
    assert run_all_cases(dtype) < TOL[dtype]


def _isa_paths():
    best = _C.backend_info()["cpu_isa"]
    return ["generic", "avx2", "avx512"][: ["generic", "avx2", "avx512"].index(best) + 1]


@pytest.mark.parametrize("isa", _isa_paths())
def test_each_isa_path_equals_reference(isa):
    code = (
        f"import sys, numpy as np; sys.path.insert(0, {os.path.dirname(__file__)!r}); import test_optim_kernels as t; "
        f"from minigrad import _C; assert _C.backend_info()['implementations']['optim'].endswith({isa!r}); "
        "print(t.run_all_cases(np.float32), t.run_all_cases(np.float64))"
    )
    out = run_python(code, MINIGRAD_ISA=isa)
    assert out.returncode == 0, out.stderr
    f32, f64 = map(float, out.stdout.split())
    assert f32 < TOL[np.float32] and f64 < TOL[np.float64]


def test_one_thread_equals_all_threads():
    """Each element is updated by one thread from its own values: the split cannot change bits."""
    import minigrad as mg

    results = []
    for threads in (1, max(2, mg.get_num_threads())):
        previous = mg.get_num_threads()
        mg.set_num_threads(threads)
        try:
            params, grads, states = _inputs(np.float32, 0)
            _C.adam_step(params, grads, states[0], states[1], states[2], **CASES[10][2])
            results.append(params)
        finally:
            mg.set_num_threads(previous)
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_bad_arguments_raise_before_memory_is_touched():
    p = np.ones(8, np.float32)
    g = np.ones(8, np.float32)
    m, v = np.zeros(8, np.float32), np.zeros(8, np.float32)
    kw = CASES[9][2]
    with pytest.raises(ValueError, match=r"exp_avgs\[0\] has shape \(7,\) but params\[0\] has shape \(8,\)"):
        _C.adam_step([p], [g], [np.zeros(7, np.float32)], [v], None, **kw)
    with pytest.raises(ValueError, match="1 params but 2 grads"):
        _C.adam_step([p], [g, g], [m], [v], None, **kw)
    with pytest.raises(ValueError, match="exp_avg_sqs"):
        _C.adam_step([p, p.copy()], [g, g], [m, m.copy()], [v], None, **kw)
    with pytest.raises(TypeError, match=r"grads\[0\] must be float32"):
        _C.adam_step([p], [g.astype(np.float64)], [m], [v], None, **kw)
    with pytest.raises(ValueError, match="C-contiguous"):
        _C.adam_step([np.ones(16, np.float32)[::2]], [g], [m], [v], None, **kw)
    with pytest.raises(ValueError, match="writeable"):
        ro = np.ones(8, np.float32)
        ro.flags.writeable = False
        _C.adam_step([ro], [g], [m], [v], None, **kw)
    with pytest.raises(ValueError, match="max_exp_avg_sqs is required"):
        _C.adam_step([p], [g], [m], [v], None, **dict(kw, amsgrad=True))
    with pytest.raises(ValueError, match="momentum_buffers is required"):
        _C.sgd_step([p], [g], None, **CASES[0][2])
    with pytest.raises(TypeError, match="numpy array"):
        _C.sgd_step([p], [[1.0] * 8], None, **CASES[3][2])
    np.testing.assert_array_equal(p, 1)
    np.testing.assert_array_equal(m, 0)
