"""The C++ boundary refuses hostile arguments with a Python exception before any memory is
touched: sizes that overflow (absurd paddings, dilations, kernels), optimiser lists whose
elements are not kept alive by the caller, and outputs that overlap other arguments.

What used to crash the interpreter runs in a child process (isolated.run_python), so a
regression fails the test instead of killing the test run."""

import textwrap

import numpy as np
import pytest

import minigrad as mg
from minigrad import _C
from minigrad.nn import functional as F

from isolated import run_python

HUGE_PAD = 2**31 - 2  # (2**31 - 2) * 2 + 4 = 2**32: the padded plane wrapped to 0 bytes
HUGE_DILATION = 2**32 - 16


def run_isolated(code: str) -> str:
    """Runs `code` in a fresh interpreter; fails when it dies by a signal or raises."""
    done = run_python(textwrap.dedent(code))
    assert done.returncode >= 0, f"child killed by signal {-done.returncode}:\n{done.stdout}{done.stderr}"
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


CONV_CASE = """
import numpy as np
from minigrad import _C
module = {module}
x = np.ones((1, 1, 4, 4), np.float32)
w = np.ones({wshape}, np.float32)
geometry = dict(stride=(2**40, 2**40), padding=({pad}, {pad}), dilation=({dil}, {dil}))
try:
    if "{pass_}" == "forward":
        module.conv2d_forward(x, w, None, np.empty((1, 1, 1, 1), np.float32), **geometry)
    else:
        module.conv2d_backward(x, w, np.ones((1, 1, 1, 1), np.float32), np.empty_like(x),
                               np.empty_like(w), np.empty(1, np.float32), **geometry)
    print("no error")
except ValueError as e:
    print("ValueError:", e)
"""


@pytest.mark.parametrize("module", ["_C", "_C.ref"])
@pytest.mark.parametrize("pass_", ["forward", "backward"])
@pytest.mark.parametrize("wshape,pad,dil", [((1, 1, 1, 1), HUGE_PAD, 1), ((1, 1, 2, 2), 2**31 - 8, HUGE_DILATION)])
def test_conv2d_huge_padding_or_dilation_is_a_value_error(module, pass_, wshape, pad, dil):
    out = run_isolated(CONV_CASE.format(module=module, pass_=pass_, wshape=wshape, pad=pad, dil=dil))
    assert out.startswith("ValueError:"), out
    assert "too large" in out and f"padding ({pad}, {pad})" in out and f"dilation ({dil}, {dil})" in out


def test_conv2d_sizes_beyond_int64_are_a_value_error_in_the_python_op():
    x, w = mg.Tensor(np.ones((1, 1, 4, 4), np.float32)), mg.Tensor(np.ones((1, 1, 2, 2), np.float32))
    with pytest.raises(
        ValueError,
        match=r"Conv2d: .* too large .*padding \(2147483640, 2147483640\), dilation \(4294967280, 4294967280\)",
    ):
        F.conv2d(x, w, padding=2**31 - 8, dilation=HUGE_DILATION, stride=2**40)
    with pytest.raises(ValueError, match=r"Conv2d: stride \(18446744073709551616, 1\).*too large"):
        F.conv2d(x, w, stride=(2**64, 1))
    with pytest.raises(
        ValueError,
        match=r"Conv2d: output plane 2199023255555 \* 2199023255555 is too large .*padding \(1099511627776, 1099511627776\)",
    ):
        F.conv2d(x, w, padding=2**40)


POOL_CASE = """
import numpy as np
from minigrad import _C
module = {module}
x = np.ones((1, 1, 4, 4), np.float32)
out = np.full((1, 1, 1, 1), 7, np.float32)
window = ((2**32, 2**32), (2**32, 2**32), (2**31, 2**31))
try:
    if "{kind}" == "max":
        module.max_pool2d_forward(x, out, np.zeros((1, 1, 1, 1), np.int64), *window)
    elif "{kind}" == "avg":
        module.avg_pool2d_forward(x, out, *window)
    elif "{kind}" == "avg_backward":
        module.avg_pool2d_backward(out, x, *window)
    else:
        module.max_pool2d_backward(out, x, np.zeros((1, 1, 1, 1), np.int64), *window)
    print("no error", out.ravel())
except ValueError as e:
    print("ValueError:", e, (out == 7).all())
"""


@pytest.mark.parametrize("module", ["_C", "_C.ref"])
@pytest.mark.parametrize("kind", ["max", "avg", "avg_backward", "max_backward"])
def test_pool2d_window_area_beyond_int64_is_a_value_error(module, kind):
    out = run_isolated(POOL_CASE.format(module=module, kind=kind))
    assert out.startswith("ValueError:"), out
    assert "kernel_size (4294967296, 4294967296)" in out and "too large" in out
    assert out.strip().endswith("True"), "the output was written before the error"


def test_pool2d_absurd_windows_are_value_errors_in_the_python_ops():
    x = mg.Tensor(np.ones((1, 1, 4, 4), np.float32))
    with pytest.raises(
        ValueError,
        match=r"AvgPool2d: window area 4294967296 \* 4294967296 is too large .*kernel_size \(4294967296, 4294967296\)",
    ):
        F.avg_pool2d(x, 2**32, padding=2**31)
    with pytest.raises(
        ValueError,
        match=r"MaxPool2d: window area 4294967296 \* 4294967296 is too large .*kernel_size \(4294967296, 4294967296\)",
    ):
        F.max_pool2d(x, 2**32, padding=2**31)
    with pytest.raises(ValueError, match=r"AvgPool2d: kernel_size \(8, 8\) is larger than input"):
        F.avg_pool2d(x, 8)  # as in PyTorch
    with pytest.raises(ValueError, match=r"AvgPool2d: stride \(18446744073709551616, 1\).*too large"):
        F.avg_pool2d(x, 2, stride=(2**64, 1))
    with pytest.raises(ValueError, match=r"AdaptiveAvgPool2d: output_size .* is too large"):
        F.adaptive_avg_pool2d(x, 2**64)


@pytest.mark.parametrize("module", [_C, _C.ref])
def test_pool2d_of_empty_arrays_with_huge_planes_is_refused(module):
    # a zero-size array can carry huge extents: (0, 1, 2**28, 2**28) holds no bytes, but the
    # kernels' plane arithmetic (h * w, kh * kw) must still fit
    x = np.empty((0, 1, 2**28, 2**28), np.float32)
    y = np.empty((0, 1, 1, 1), np.float32)
    with pytest.raises(ValueError, match=r"adaptive_avg_pool2d_forward.*input plane 268435456 \* 268435456.*too large"):
        module.adaptive_avg_pool2d_forward(x, y)
    with pytest.raises(ValueError, match="max_pool2d_forward.*too large"):
        module.max_pool2d_forward(x, y, np.empty(y.shape, np.int64), (2**28, 2**28), (1, 1))


# ------------------------------------------------------------------------ optimiser lists
OPTIM_CASE = """
import numpy as np
from minigrad import _C
module = {module}

class Fresh:
    '''A sequence whose items are new arrays each time: nobody else keeps them alive.'''
    def __init__(self, n, size):
        self.n, self.size = n, size
    def __len__(self):
        return self.n
    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return np.ones(self.size, np.float32)

for size in (1 << 16, 3, 1 << 20):
    for _ in range(20):
        module.sgd_step(Fresh(3, size), Fresh(3, size), Fresh(3, size), lr=0.1, momentum=0.9,
                        dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False,
                        first_step=False)
        module.adam_step(Fresh(3, size), Fresh(3, size), Fresh(3, size), Fresh(3, size),
                         Fresh(3, size), lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8,
                         weight_decay=0.0, step_size=1e-3, bias_correction2_sqrt=1.0,
                         decoupled_weight_decay=False, amsgrad=True, maximize=False)
print("survived")
"""


@pytest.mark.parametrize("module", ["_C", "_C.ref"])
def test_optimiser_lists_of_fresh_arrays_are_kept_alive(module):
    assert run_isolated(OPTIM_CASE.format(module=module)).strip() == "survived"


@pytest.mark.parametrize("module", [_C, _C.ref])
def test_optimiser_sequences_that_raise_or_lie_about_their_length(module):
    class Broken:
        def __len__(self):
            return 2

        def __getitem__(self, i):
            if i == 1:
                raise KeyError("no second tensor")
            return np.ones(3, np.float32)

    p = [np.ones(3, np.float32), np.ones(3, np.float32)]
    scalars = dict(
        lr=0.1, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False, first_step=False
    )
    with pytest.raises(KeyError, match="no second tensor"):
        module.sgd_step(p, Broken(), None, **scalars)
    with pytest.raises(ValueError, match="got 2 params but 1 grads"):
        module.sgd_step(p, [p[0].copy()], None, **scalars)
    assert (p[0] == 1).all() and (p[1] == 1).all()


@pytest.mark.parametrize("module", [_C, _C.ref])
@pytest.mark.parametrize("name", ["lr", "momentum", "weight_decay"])
def test_optimiser_bindings_refuse_non_finite_hyper_parameters(module, name):
    p, g, m = np.ones(4, np.float32), np.ones(4, np.float32), np.zeros(4, np.float32)
    scalars = dict(lr=0.1, momentum=0.0, alpha=0.99, eps=1e-8, weight_decay=0.0, centered=False, maximize=False)
    scalars[name] = float("nan")
    with pytest.raises(ValueError, match=f"rmsprop_step: {name} must be finite, got nan"):
        module.rmsprop_step([p], [g], [m], None, None, **scalars)
    assert (p == 1).all()


# -------------------------------------------------------------------------------- overlap
def conv_args():
    x = np.ones((2, 3, 6, 6), np.float32)
    w = np.ones((4, 3, 3, 3), np.float32)
    return x, w


@pytest.mark.parametrize("module", [_C, _C.ref])
def test_conv2d_output_overlapping_an_input_is_refused(module):
    x, w = conv_args()
    storage = np.zeros(300, np.float32)
    x_alias = storage[:216].reshape(2, 3, 6, 6)
    out = storage[100:228].reshape(2, 4, 4, 4)  # partly inside x_alias
    with pytest.raises(ValueError, match="conv2d_forward.*out must not share memory with input"):
        module.conv2d_forward(x_alias, w, None, out)
    gy = np.ones((2, 4, 4, 4), np.float32)
    gx_gw = np.zeros(216 + 108, np.float32)
    gx, gw = gx_gw[:216].reshape(x.shape), gx_gw[100:208].reshape(w.shape)
    with pytest.raises(
        ValueError,
        match="grad_input must not share memory with grad_weight|grad_weight must not share memory with grad_input",
    ):
        module.conv2d_backward(x, w, gy, gx, gw, None)
    assert (storage == 0).all() and (gx_gw == 0).all()


@pytest.mark.parametrize("module", [_C, _C.ref])
def test_batch_norm_output_partly_overlapping_x_is_refused(module):
    storage = np.ones(4 * 3 * 5 + 7, np.float32)
    x = storage[:60].reshape(4, 3, 5)
    out = storage[7:].reshape(4, 3, 5)
    vec = lambda: np.zeros(3, np.float32)  # noqa: E731
    with pytest.raises(ValueError, match="batch_norm_forward_train: out must not share memory with x"):
        module.batch_norm_forward_train(x, None, None, None, None, out, vec(), vec(), momentum=0.1, eps=1e-5)
    stats = np.zeros(4, np.float32)
    with pytest.raises(
        ValueError,
        match="save_invstd must not share memory with save_mean|save_mean must not share memory with save_invstd",
    ):
        module.batch_norm_forward_train(
            x.copy(),
            None,
            None,
            None,
            None,
            np.empty((4, 3, 5), np.float32),
            stats[:3],
            stats[1:],
            momentum=0.1,
            eps=1e-5,
        )


@pytest.mark.parametrize("module", [_C, _C.ref])
def test_other_families_refuse_overlap_but_keep_documented_in_place(module):
    a = np.ones((1, 4, 4), np.float32)
    storage = np.zeros(20, np.float32)
    with pytest.raises(ValueError, match="gemm.*out must not share memory with a"):
        module.gemm(storage[:16].reshape(1, 4, 4), a, storage[4:].reshape(1, 4, 4))
    module.gemm(a, a, np.empty((1, 4, 4), np.float32))  # inputs may alias each other
    x = np.ones((1, 1, 4, 4), np.float32)
    pool = np.zeros(20, np.float32)
    with pytest.raises(ValueError, match="avg_pool2d_forward.*out must not share memory with input"):
        module.avg_pool2d_forward(pool[:16].reshape(x.shape), pool[15:19].reshape(1, 1, 2, 2), (2, 2), (2, 2))
    # element-wise: out may be an input exactly (documented in place), not a shifted view
    v = np.arange(-8, 8, dtype=np.float32)
    module.relu_forward(v, v)
    assert (v >= 0).all()
    w = np.arange(-8, 9, dtype=np.float32)
    with pytest.raises(ValueError, match="relu_forward.*out must not share memory with x"):
        module.relu_forward(w[:-1], w[1:])
    module.add(v, v, v)
    with pytest.raises(ValueError, match="add.*out must not share memory with b"):
        module.add(v.copy(), w[1:], w[:-1])
    p = np.zeros(8, np.float32)
    with pytest.raises(
        ValueError,
        match=r"sgd_step.*params\[1\] must not share memory with params\[0\]|params\[0\] must not share memory with params\[1\]",
    ):
        module.sgd_step(
            [p[:5], p[3:]],
            [np.ones(5, np.float32), np.ones(5, np.float32)],
            None,
            lr=0.1,
            momentum=0.0,
            dampening=0.0,
            weight_decay=0.0,
            nesterov=False,
            maximize=False,
            first_step=False,
        )
    with pytest.raises(
        ValueError,
        match=r"sgd_step.*grads\[0\] must not share memory with params\[0\]|params\[0\] must not share memory with grads\[0\]",
    ):
        module.sgd_step(
            [p[:5]],
            [p[:5]],
            None,
            lr=0.1,
            momentum=0.0,
            dampening=0.0,
            weight_decay=0.0,
            nesterov=False,
            maximize=False,
            first_step=False,
        )
    assert (p == 0).all()


def test_set_num_threads_refuses_counts_the_runtime_cannot_start():
    before = _C.get_num_threads()
    for n in (0, -1, 2**31 - 1):
        with pytest.raises(ValueError, match=rf"set_num_threads: n must lie in \[1, 4096\], got {n}"):
            _C.set_num_threads(n)
    with pytest.raises(TypeError):
        _C.set_num_threads(2**63)
    assert _C.get_num_threads() == before
