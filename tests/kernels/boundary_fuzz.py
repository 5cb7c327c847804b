"""Fuzzes every entry point of minigrad._C and minigrad._C.ref with hostile arguments.

Run as a program (``python -m boundary_fuzz EXAMPLES``) in a child process by
test_boundary_fuzz.py: a crash kills only the child, and the test sees the signal. Each entry
point gets a generator of VALID arguments (small random shapes, so the kernels really run) and
hypothesis then spoils some of them: wrong dtypes (int, bool, object), non-contiguous,
Fortran-order, read-only and broadcast views, zero-size arrays with huge extents, wrong ranks,
arguments aliasing or partly overlapping each other, integers like -1, 2**31, 2**63-1, 2**64,
NaN and infinite scalars, and sequences whose __getitem__ returns fresh arrays, raises, or
disagrees with __len__. Allowed outcomes are a result or one of ALLOWED exceptions; the program
prints a JSON summary {name: {outcome: count}} and exits 1 on any other exception.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter, defaultdict

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minigrad import _C


class FuzzError(Exception):
    """Raised by the hostile sequences' __getitem__."""


# A Python exception is the contract; MemoryError for a workspace the machine cannot hold.
ALLOWED = (TypeError, ValueError, OverflowError, IndexError, MemoryError, FuzzError)

HOSTILE_INTS = [-1, 0, -(2**63), 2**31 - 1, 2**31, 2**32, 2**63 - 1, 2**63, 2**64]
HOSTILE_FLOATS = [float("nan"), float("inf"), -float("inf"), 1e308, -0.0]
FLOATS = [np.float32, np.float64]


def entry_points() -> list:
    """Every callable of _C and _C.ref, as 'name' and 'ref.name'."""
    names = [
        n
        for n in dir(_C)
        if not n.startswith("_") and callable(getattr(_C, n)) and not isinstance(getattr(_C, n), type(_C))
    ]
    names += ["ref." + n for n in dir(_C.ref) if not n.startswith("_") and callable(getattr(_C.ref, n))]
    return sorted(names)


def function(name: str):
    return getattr(_C.ref, name[4:]) if name.startswith("ref.") else getattr(_C, name)


# ----------------------------------------------------------------------- valid arguments
def arr(draw, shape, dtype):
    return draw(st.sampled_from([np.zeros, np.ones]))(shape, dtype)


def conv_valid(draw, backward: bool):
    dtype = draw(st.sampled_from(FLOATS))
    groups = draw(st.integers(1, 2))
    n, cig, cog = draw(st.integers(0, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, 1)), draw(st.integers(0, 1)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    if h + 2 * padding[0] < dilation[0] * (kh - 1) + 1:
        kh = 1
    if w + 2 * padding[1] < dilation[1] * (kw - 1) + 1:
        kw = 1
    xs, ws = (n, cig * groups, h, w), (cog * groups, cig, kh, kw)
    ys = tuple(_C.conv2d_output_shape(xs, ws, stride, padding, dilation, groups))
    args = dict(
        input=arr(draw, xs, dtype),
        weight=arr(draw, ws, dtype),
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
    )
    if backward:
        args.update(
            grad_output=arr(draw, ys, dtype),
            grad_input=np.empty(xs, dtype),
            grad_weight=np.empty(ws, dtype),
            grad_bias=draw(st.sampled_from([None, np.empty(ws[0], dtype)])),
        )
    else:
        args.update(
            bias=draw(st.sampled_from([None, arr(draw, ws[0], dtype)])),
            out=np.empty(ys, dtype),
            relu=draw(st.booleans()),
        )
    return args


def pool_valid(draw, kind: str, backward: bool):
    dtype = draw(st.sampled_from(FLOATS))
    n, c, h, w = draw(st.integers(0, 2)), draw(st.integers(0, 2)), draw(st.integers(1, 6)), draw(st.integers(1, 6))
    xs = (n, c, h, w)
    if kind == "adaptive":
        ys = (n, c, draw(st.integers(1, h)), draw(st.integers(1, w)))
        window = {}
    else:
        k = (draw(st.integers(1, h)), draw(st.integers(1, w)))
        window = dict(
            kernel_size=k,
            stride=(draw(st.integers(1, 3)), draw(st.integers(1, 3))),
            padding=(draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2))),
        )
        ys = tuple(_C.pool2d_output_shape(xs, window["kernel_size"], window["stride"], window["padding"]))
    args = dict(window)
    if backward:
        args.update(grad_output=arr(draw, ys, dtype), grad_input=np.empty(xs, dtype))
    else:
        args.update(input=arr(draw, xs, dtype), out=np.empty(ys, dtype))
    if kind == "max":
        args["indices"] = np.zeros(ys, np.int64) if backward else np.empty(ys, np.int64)
    return args


def bn_valid(draw, mode: str):
    dtype = draw(st.sampled_from(FLOATS))
    n, c, s = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 4))
    if n * s < 2:
        s = 2
    vec = lambda: arr(draw, (c,), dtype)  # noqa: E731
    maybe = lambda: draw(st.sampled_from([None, vec()]))  # noqa: E731
    x = arr(draw, (n, c, s), dtype)
    relu = draw(st.booleans())
    if mode == "backward":
        return dict(
            x=x,
            grad_out=arr(draw, (n, c, s), dtype),
            weight=maybe(),
            bias=maybe(),
            mean=vec(),
            invstd=np.ones(c, dtype),
            grad_input=draw(st.sampled_from([None, np.empty((n, c, s), dtype)])),
            grad_weight=maybe(),
            grad_bias=maybe(),
            training=draw(st.booleans()),
            relu=relu,
        )
    args = dict(
        x=x,
        weight=maybe(),
        bias=maybe(),
        out=np.empty((n, c, s), dtype),
        save_mean=vec(),
        save_invstd=vec(),
        eps=1e-5,
        relu=relu,
        residual=draw(st.sampled_from([None, arr(draw, (n, c, s), dtype)])),
    )
    if mode == "train":
        args.update(running_mean=maybe(), running_var=maybe(), momentum=0.1)
    else:
        args.update(running_mean=vec(), running_var=np.ones(c, dtype))
    return args


OPTIM = {  # name: (state lists, scalars)
    "sgd_step": (
        ["momentum_buffers"],
        dict(lr=0.1, momentum=0.9, dampening=0.0, weight_decay=0.01, nesterov=False, maximize=False, first_step=False),
    ),
    "adagrad_step": (["sums"], dict(clr=0.1, eps=1e-10, weight_decay=0.0, maximize=False)),
    "rmsprop_step": (
        ["square_avgs", "grad_avgs", "momentum_buffers"],
        dict(lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.9, centered=True, maximize=False),
    ),
    "adadelta_step": (["square_avgs", "acc_deltas"], dict(lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, maximize=False)),
    "adam_step": (
        ["exp_avgs", "exp_avg_sqs", "max_exp_avg_sqs"],
        dict(
            lr=1e-3,
            beta1=0.9,
            beta2=0.999,
            eps=1e-8,
            weight_decay=0.0,
            step_size=1e-3,
            bias_correction2_sqrt=1.0,
            decoupled_weight_decay=False,
            amsgrad=True,
            maximize=False,
        ),
    ),
    "nadam_step": (
        ["exp_avgs", "exp_avg_sqs"],
        dict(
            lr=1e-3,
            beta1=0.9,
            beta2=0.999,
            eps=1e-8,
            weight_decay=0.0,
            bias_correction2=0.1,
            grad_coef=-0.1,
            avg_coef=-0.1,
            decoupled_weight_decay=False,
            maximize=False,
        ),
    ),
}


def optim_valid(draw, name: str):
    states, scalars = OPTIM[name]
    dtype = draw(st.sampled_from(FLOATS))
    sizes = draw(st.lists(st.sampled_from([0, 1, 3, 17, 5000]), min_size=0, max_size=3))
    lists = lambda: [arr(draw, (size,), dtype) for size in sizes]  # noqa: E731
    args = dict(params=lists(), grads=lists(), **{s: lists() for s in states}, **scalars)
    return args


def gemm_valid(draw):
    dtype = draw(st.sampled_from(FLOATS))
    batch, m, n, k = draw(st.integers(0, 2)), draw(st.integers(0, 5)), draw(st.integers(0, 5)), draw(st.integers(0, 5))
    ta, tb = draw(st.booleans()), draw(st.booleans())
    ba, bb = draw(st.sampled_from([1, batch])), draw(st.sampled_from([1, batch]))
    return dict(
        a=arr(draw, (ba, k, m) if ta else (ba, m, k), dtype),
        b=arr(draw, (bb, n, k) if tb else (bb, k, n), dtype),
        out=np.ones((max(ba, bb), m, n), dtype),
        trans_a=ta,
        trans_b=tb,
        alpha=1.5,
        beta=draw(st.sampled_from([0.0, 1.0])),
    )


def bf16_operand(draw, shape):
    """A bfloat16 operand (its uint16 bits) or a float32 one, as the bfloat16 kernels take."""
    values = arr(draw, shape, np.float32) - 0.5
    return values if draw(st.booleans()) else (values.view(np.uint32) >> 16).astype(np.uint16)


def gemm_bf16_valid(draw):
    args = gemm_valid(draw)
    args.update(a=bf16_operand(draw, args["a"].shape), b=bf16_operand(draw, args["b"].shape))
    args["out"] = np.ones(args["out"].shape, np.float32)
    return args


def conv_bf16_valid(draw, backward: bool):
    args = conv_valid(draw, backward)
    bits = lambda a: (a.astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)  # noqa: E731
    for name in ("input", "weight", "grad_output"):
        if name in args:
            args[name] = bits(args[name])
    for name in ("bias", "out", "grad_input", "grad_weight", "grad_bias"):
        if args.get(name) is not None:
            args[name] = args[name].astype(np.float32)
    return args


def convert_valid(draw):
    shape = tuple(draw(st.lists(st.integers(0, 5), max_size=3)))
    values = arr(draw, shape, np.float32) - 0.5
    if draw(st.booleans()):
        return dict(src=values, dst=np.empty(shape, np.uint16))
    return dict(src=(values.view(np.uint32) >> 16).astype(np.uint16), dst=np.empty(shape, np.float32))


def eltwise_valid(draw, names):
    dtype = draw(st.sampled_from(FLOATS))
    shape = tuple(draw(st.lists(st.integers(0, 5), max_size=3)))
    args = {name: arr(draw, shape, dtype) - 0.5 for name in names}
    if draw(st.booleans()):  # documented in place: out is one of the inputs
        args["out"] = args[draw(st.sampled_from([n for n in names if n != "out"]))]
    return args


# The base names (without "ref.") valid() has a generator for: a binding missing here fails
# test_boundary_fuzz.py, so every new entry point gets fuzzed.
COVERED = {
    "conv2d_forward",
    "conv2d_backward",
    "conv2d_algorithm",
    "conv2d_bf16_algorithm",
    "conv2d_output_shape",
    "conv2d_calls",
    "winograd_transform",
    "pool2d_output_shape",
    "max_pool2d_forward",
    "max_pool2d_backward",
    "avg_pool2d_forward",
    "avg_pool2d_backward",
    "adaptive_avg_pool2d_forward",
    "adaptive_avg_pool2d_backward",
    "batch_norm_forward_train",
    "batch_norm_forward_eval",
    "batch_norm_backward",
    *OPTIM,
    "gemm",
    "gemm_bf16",
    "conv2d_forward_bf16",
    "conv2d_backward_bf16",
    "convert",
    "relu_forward",
    "relu_backward",
    "add",
    "set_num_threads",
    "get_num_threads",
    "backend_info",
    "set_thread_policy",
    "thread_policy",
    "team_for",
    "parse_proc_stat",
}

FAMILIES = ["eltwise", "optim", "batchnorm", "pool", "conv", "gemm"]
NO_ARGUMENTS = ("backend_info", "get_num_threads", "thread_policy", "conv2d_calls")  # nothing to spoil
CONV_ALGOS = ["auto", "direct", "chanvec", "gemm", "winograd", "winograd_f2", "winograd_f4"]
WINOGRAD_KINDS = ["input", "weight", "output", "grad_output", "grad_weight"]


def shapes_valid(draw, name: str):
    if name == "pool2d_output_shape":
        return dict(input_shape=(1, 2, 5, 5), kernel_size=(2, 2), stride=(2, 1), padding=(1, 0))
    args = dict(
        input_shape=(2, 4, 7, 7), weight_shape=(6, 4, 3, 3), stride=(1, 2), padding=(1, 0), dilation=(1, 1), groups=1
    )
    if name == "conv2d_algorithm":
        args.update(algo=draw(st.sampled_from(CONV_ALGOS)))
    if name in ("conv2d_algorithm", "conv2d_bf16_algorithm"):
        args.update(pass_=draw(st.sampled_from(["forward", "grad_input", "grad_weight"])))
    return args


def valid(draw, name: str) -> dict:
    base = name[4:] if name.startswith("ref.") else name
    if base not in COVERED:
        raise LookupError(f"boundary_fuzz has no argument generator for {name}")
    kind, _, direction = base.partition("_pool2d_")
    if base in ("conv2d_forward_bf16", "conv2d_backward_bf16"):
        return conv_bf16_valid(draw, base == "conv2d_backward_bf16")
    if base == "gemm_bf16":
        return gemm_bf16_valid(draw)
    if base == "convert":
        return convert_valid(draw)
    if base.startswith("conv2d_") and base.endswith("ward"):
        args = conv_valid(draw, base == "conv2d_backward")
        if not name.startswith("ref."):  # the reference has one algorithm
            args["algo"] = draw(st.sampled_from(CONV_ALGOS))
        return args
    if base == "winograd_transform":
        kind, tile = draw(st.sampled_from(WINOGRAD_KINDS)), draw(st.sampled_from([2, 4]))
        side = {"input": tile + 2, "weight": 3, "output": tile + 2, "grad_output": tile, "grad_weight": tile + 2}[kind]
        count = draw(st.integers(0, 40))
        return dict(kind=kind, tile=tile, tiles=arr(draw, (count, side, side), draw(st.sampled_from(FLOATS))) - 0.5)
    if direction:
        return pool_valid(draw, {"max": "max", "avg": "avg", "adaptive_avg": "adaptive"}[kind], direction == "backward")
    if base.startswith("batch_norm_"):
        return bn_valid(draw, base.rsplit("_", 1)[1])
    if base in OPTIM:
        return optim_valid(draw, base)
    if base == "gemm":
        return gemm_valid(draw)
    if base in ("relu_forward", "relu_backward", "add"):
        return eltwise_valid(
            draw, {"relu_forward": ["x", "out"], "relu_backward": ["grad", "y", "out"], "add": ["a", "b", "out"]}[base]
        )
    if base == "set_num_threads":
        return dict(n=draw(st.integers(1, 3)))
    if base in NO_ARGUMENTS:
        return {}
    if base == "set_thread_policy":
        return dict(size_by_work=draw(st.booleans()), shrink_when_busy=draw(st.booleans()))
    if base == "team_for":
        return dict(family=draw(st.sampled_from(FAMILIES)), work=draw(st.integers(-(2**63), 2**63 - 1)))
    if base == "parse_proc_stat":
        line = st.from_regex(r"cpu[0-9]{0,5}( -?[0-9]{0,25}(\.[0-9]*)?){0,12}", fullmatch=True)
        return dict(
            text="\n".join(draw(st.lists(line, max_size=6))) + draw(st.text(max_size=30)),
            cpus=draw(st.one_of(st.none(), st.lists(st.integers(0, 1023), max_size=4))),
        )
    return shapes_valid(draw, base)


# ------------------------------------------------------------------------------- spoiling
class Fresh:
    """A sequence handing out a new copy of each array on every __getitem__."""

    def __init__(self, items):
        self.items = items

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return np.array(self.items[i], copy=True)


class Raising(Fresh):
    def __getitem__(self, i):
        if i >= 1:
            raise FuzzError(f"no item {i}")
        return self.items[i]


class Longer(Fresh):
    """Claims one more item than it has."""

    def __len__(self):
        return len(self.items) + 1

    def __getitem__(self, i):
        return self.items[i]


def huge_empty(draw, ndim: int, dtype):
    """A zero-size array whose other extents are huge (it holds no bytes)."""
    ndim = max(ndim, 1)
    shape = [draw(st.sampled_from([2**20, 2**31, 2**40, 1])) for _ in range(ndim)]
    shape[draw(st.integers(0, ndim - 1))] = 0
    try:
        return np.empty(shape, dtype)
    except ValueError:  # numpy's own limit on the extents' product
        return np.empty([0] * ndim, dtype)


def spoil_array(draw, a: np.ndarray, others: list):
    choice = draw(
        st.sampled_from(
            ["dtype", "strided", "fortran", "readonly", "broadcast", "huge", "rank", "alias", "overlap", "none", "list"]
        )
    )
    if choice == "dtype":
        return a.astype(
            draw(st.sampled_from([np.int32, np.int64, np.bool_, object, np.float16, np.float32, np.float64]))
        )
    if choice == "strided" and a.ndim:
        return np.repeat(a, 2, axis=-1)[..., ::2]
    if choice == "fortran":
        return np.asfortranarray(a)
    if choice == "readonly":
        b = a.copy()
        b.setflags(write=False)
        return b
    if choice == "broadcast":
        return np.broadcast_to(np.zeros((), a.dtype), a.shape)
    if choice == "huge":
        return huge_empty(draw, a.ndim, a.dtype)
    if choice == "rank":
        return a.reshape(-1) if a.ndim != 1 else a[None]
    if choice in ("alias", "overlap") and others:
        other = draw(st.sampled_from(others))
        if choice == "alias" and other.shape == a.shape:
            return other
        flat = other.reshape(-1) if other.flags.c_contiguous else other.ravel()
        shift = draw(st.integers(0, 3))
        if flat.dtype == a.dtype and flat.size >= a.size + shift:
            return flat[shift : shift + a.size].reshape(a.shape)  # partly the other's bytes
        return a
    if choice == "none":
        return None
    if choice == "list":
        return a.tolist()
    return a


def spoil(draw, args: dict) -> dict:
    """Replaces one to three arguments with hostile values of the same kind."""
    args = dict(args)
    keys = sorted(args)
    if not keys:
        return args
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(keys))
        value = args[key]
        others = [v for k, v in args.items() if k != key and isinstance(v, np.ndarray)]
        if isinstance(value, np.ndarray):
            args[key] = spoil_array(draw, value, others)
        elif isinstance(value, bool):
            args[key] = draw(st.sampled_from([None, 2, "yes"]))
        elif isinstance(value, int):
            args[key] = draw(st.sampled_from(HOSTILE_INTS))
        elif isinstance(value, float):
            args[key] = draw(st.sampled_from(HOSTILE_FLOATS))
        elif isinstance(value, tuple) and value and all(isinstance(v, int) for v in value):
            spoilt = list(value)
            spoilt[draw(st.integers(0, len(spoilt) - 1))] = draw(st.sampled_from(HOSTILE_INTS))
            args[key] = draw(st.sampled_from([tuple(spoilt), value[:-1], 1.5]))
        elif isinstance(value, list):
            kind = draw(st.sampled_from(["fresh", "raising", "longer", "shorter", "item", "alias", "tuple"]))
            if kind == "fresh":
                args[key] = Fresh(value)
            elif kind == "raising":
                args[key] = Raising(value)
            elif kind == "longer":
                args[key] = Longer(value)
            elif kind == "shorter":
                args[key] = value[:-1]
            elif kind == "item" and value:
                items = list(value)
                i = draw(st.integers(0, len(items) - 1))
                others = [a for v in args.values() if isinstance(v, list) for a in v if isinstance(a, np.ndarray)]
                items[i] = spoil_array(draw, items[i], others) if draw(st.booleans()) else None
                args[key] = items
            elif kind == "alias" and value:  # an element of another list in this one
                pool = [v for k, v in args.items() if k != key and isinstance(v, list) and len(v) == len(value)]
                if pool:
                    args[key] = list(draw(st.sampled_from(pool)))
            else:
                args[key] = tuple(value)
        elif isinstance(value, str):
            args[key] = draw(st.sampled_from(["", "fft", "FORWARD", 3]))
        elif value is None:
            like = next(iter(others), np.zeros(3, np.float32))
            args[key] = like.copy()
    return args


def fuzz(name: str, examples: int, outcomes: Counter, unexpected: list) -> None:
    fn = function(name)

    @settings(
        max_examples=examples, derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(st.data())
    def run(data):
        args = valid(data.draw, name)
        if data.draw(st.integers(0, 3)):  # three calls in four are hostile
            args = spoil(data.draw, args)
        threads, policy = _C.get_num_threads(), _C.thread_policy()
        try:
            fn(**args)
            outcomes["ok"] += 1
        except ALLOWED as e:
            outcomes[type(e).__name__] += 1
        except Exception as e:
            unexpected.append(f"{name}: {type(e).__name__}: {e}")
        finally:
            _C.set_num_threads(threads)
            _C.set_thread_policy(size_by_work=policy["size_by_work"], shrink_when_busy=policy["shrink_when_busy"])

    run()


def limit_memory() -> None:
    """Huge (but not overflowing) workspaces must fail fast as MemoryError, not page in or get the
    process killed: under ASan the allocator returns null (ASAN_OPTIONS from the parent), otherwise
    the address space is capped."""
    if "libasan" in os.environ.get("LD_PRELOAD", ""):
        return
    import resource

    cap = 6 << 30
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))


def main(argv) -> int:
    examples = int(argv[1]) if len(argv) > 1 else 40
    names = argv[2:] or entry_points()
    limit_memory()
    summary, unexpected = defaultdict(Counter), []
    for name in names:
        fuzz(name, examples, summary[name], unexpected)
    print(json.dumps({"summary": summary, "unexpected": unexpected}))
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
