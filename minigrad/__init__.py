"""minigrad: a readable tape-based reverse-mode autodiff engine with fast OpenMP C++ kernels.

The README's "Reading order" walks the code from the tape down to the kernels.
"""

from . import threads  # isort: skip  (first: it sets the OpenMP wait policy before _C loads the runtime)
from . import _C, _moved, amp, dtypes
from .amp import autocast, is_autocast_enabled
from .autograd import enable_grad, is_grad_enabled, no_grad
from .creation import arange, eye, from_numpy, full, ones, ones_like, rand, randn, tensor, zeros, zeros_like
from .device import cuda, device
from .gradcheck import gradcheck
from .ops import (
    abs,
    argmax,
    argmin,
    cat,
    chunk,
    clip,
    concat,
    exp,
    flatten,
    gather,
    log,
    log_softmax,
    logsumexp,
    masked_fill,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    pad,
    relu,
    sigmoid,
    softmax,
    sort,
    split,
    sqrt,
    squeeze,
    stack,
    std,
    sum,
    tanh,
    topk,
    unsqueeze,
    var,
    where,
)
from .random import get_rng_state, manual_seed, set_rng_state
from .tensor import Tensor
from .threads import get_num_threads, set_num_threads, set_thread_policy, thread_info

# isort: split
# layers and optimisers build on the names above, so they are imported after them
from . import models, nn, optim
from .io import load, save

_moved.install()  # minigrad.transfer, minigrad.tune, ... still import (they live in minigrad.strategies)

__version__ = "0.1.0"
float32, float64, int64 = "float32", "float64", "int64"


# Submodules a script reaches as attributes (``mg.data.DataLoader``, ``mg.adversarial``) without
# importing them first: imported on first use. The moved strategies resolve through _moved.
_LAZY = (
    "data",
    "train",
    "strategies",
    "utils",
    "gradcheck",
    "demo",
    "cli",
    "device",
    "io",
    "amp",
    "inspect",
    "onnx",
    "lab",
    "distributed",
)


def __getattr__(name: str):
    if name == "bfloat16":  # ml_dtypes' bfloat16, imported on first use (minigrad/dtypes.py)
        return dtypes.bfloat16_type()
    if name == "profile":  # mg.profile is the inspect module's profile (per-op time, kernels, memory)
        from .inspect import profile

        return profile
    if name in _LAZY or f"minigrad.{name}" in _moved.MOVED:
        import importlib

        return importlib.import_module(f"minigrad.{name}")
    raise AttributeError(f"module 'minigrad' has no attribute {name!r}")


def backend_info() -> dict:
    """Which instruction set and kernel implementations run, thread count, compiler and flags,
    ``wheel``: the tag of the installed wheel (e.g. ``cp311-cp311-manylinux_2_28_x86_64``; a
    source build says so), what bfloat16 autocast brings on this CPU, and ``conv_calls``: how
    many conv2d calls each algorithm ran so far, per pass (``{"forward": {"winograd_f4": 12, ...}}``)."""
    return {
        **_C.backend_info(),
        "wheel": _wheel_tag(),
        "bfloat16": amp.bfloat16_support(),
        "conv_calls": _C.conv2d_calls(),
    }


def _wheel_tag() -> str:
    """The wheel this copy was installed from, read from its WHEEL metadata: a bug report then
    says which binary ran."""
    import importlib.metadata
    import os

    try:
        dist = importlib.metadata.distribution("minigrad")
        installed = os.path.realpath(str(dist.locate_file("minigrad"))) == os.path.dirname(os.path.realpath(__file__))
        tags = [
            line.split(":", 1)[1].strip()
            for line in (dist.read_text("WHEEL") or "").splitlines()
            if line.startswith("Tag:")
        ]
    except importlib.metadata.PackageNotFoundError:
        installed, tags = False, []
    if not installed or not tags:
        return "none: a source build (not installed from a wheel)"
    return ", ".join(tags)
