"""Mixed precision: ``autocast`` and the dtype each op computes in, as in ``torch.autocast("cpu")``.

Inside ``with minigrad.autocast("cpu", dtype=minigrad.bfloat16):``

- **lower-precision ops** (``amp = "lower"`` on the op: matmul, linear, conv2d) see every float
  input rounded to bfloat16 (:func:`operands`), multiply with float32 accumulation (bfloat16
  products are exact in float32) and round their output to bfloat16. Their forward and
  backward products run on the bfloat16 GEMM (``_C.gemm_bf16``: AMX tiles or AVX512_BF16
  where the CPU has them). The rounding happens inside the op, not as a recorded cast: the
  gradient of a float32 input (a weight) is the op's float32 result itself, where PyTorch
  rounds it to bfloat16 on its way back through the cast, and the tape holds one node per
  layer instead of three. A parameter's rounding is made once per autocast region (while
  the parameter is unchanged) and reused by later forwards and by backward.
- **float32 ops** (``amp = "float32"``: softmax, log-softmax, losses, reductions, layer,
  group and instance norm) get bfloat16 inputs widened to float32 and return float32.
- **batch norm** (``amp = "float32_math"``) computes in float32 too, but reads a bfloat16
  activation (and a residual of its shape) and writes its output (and the gradients of both)
  in bfloat16, as PyTorch's CPU batch norm does: its statistics, weights and their gradients
  stay float32, and a ResNet's activations stay bfloat16 from one convolution to the next
  instead of being widened and rounded again around every normalisation.
- **other ops** run in their inputs' dtype.

Everywhere, inside autocast or not, an op without bfloat16 arithmetic of its own (every op but
those that only move bytes, ``moves_bytes = True``, and those with bfloat16 kernels,
``bfloat16_kernels = True``: ReLU and Add) that receives bfloat16 arrays computes in
float32 and rounds its result back to bfloat16 when all its float inputs were bfloat16, as
PyTorch's CPU kernels do. Weights stay float32 (the master copies); their gradients arrive in
float32, ready for the fused optimisers.

On a CPU without bfloat16 arithmetic (no AVX512_BF16, no AMX) this gives bfloat16's numbers,
not its speed: the products run on the float32 kernels on widened operands.
:func:`bfloat16_support` says which.
"""

from __future__ import annotations

import functools
import threading

import numpy as np

from . import _C
from .dtypes import as_dtype, bfloat16_type, convert, is_bfloat16, is_float, loaded_bfloat16, require_bfloat16


class _State(threading.local):  # per thread, like torch's autocast state
    region = None  # a class default: reading an unset thread-local attribute raises inside, slowly


_state = _State()
# The bfloat16 GEMM's road (csrc/gemm/bf16.h): "amx", "avx512_bf16" or "float32" (widening).
BF16_KERNEL = _C.backend_info()["bf16_kernel"]


def _lower_compute(bf16: np.dtype) -> np.dtype:
    """What the lower-precision ops compute on: bfloat16 arrays (their kernels' bfloat16 road)
    or float32 ones widened from them."""
    return bf16 if BF16_KERNEL != "float32" else np.dtype(np.float32)


def _current():
    return _state.region


def is_autocast_enabled() -> bool:
    return _current() is not None


class autocast:
    """``autocast(device_type="cpu", dtype=bfloat16, enabled=True, cache_enabled=True)``: a context
    manager and a decorator. Only ``"cpu"`` and bfloat16 exist here; float16 autocast is not
    supported (no CPU speed to gain from it)."""

    def __init__(self, device_type: str = "cpu", dtype=None, enabled: bool = True, cache_enabled: bool = True):
        if device_type != "cpu":
            raise ValueError(f"autocast: minigrad runs on the CPU only, got device_type={device_type!r}")
        if enabled:
            wanted = require_bfloat16("autocast") if dtype is None else as_dtype(dtype)
            if not is_bfloat16(wanted):
                raise ValueError(f"autocast: only dtype=minigrad.bfloat16 is supported, got {dtype!r}")
        self.enabled = bool(enabled)
        self.cache_enabled = bool(cache_enabled)

    def __enter__(self):
        self._previous = _current()
        if self.enabled:
            _state.region = {"cache": {} if self.cache_enabled else None}
        else:
            _state.region = None
        return self

    def __exit__(self, *exc):
        _state.region = self._previous  # leaving the outermost region drops its cached roundings
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapped(*args, **kwargs):
            with autocast("cpu", bfloat16_type(), self.enabled, self.cache_enabled):
                return fn(*args, **kwargs)

        return wrapped


def _per_region(region, key, tensor, make):
    """make(), or for a parameter (a leaf that requires grad) the value made once per region
    under ``key`` while its version is unchanged (an optimiser step inside the region changes it)."""
    cache = region["cache"] if region is not None else None
    if cache is None or tensor._node is not None or not tensor.requires_grad:
        return make()
    hit = cache.get(key)
    if hit is not None and hit[0] is tensor and hit[1] == tensor._version[0]:
        return hit[2]
    value = make()
    cache[key] = (tensor, tensor._version[0], value)  # keeps the tensor alive: ids cannot be reused
    return value


def _cast(tensor, dtype, region):
    """tensor cast to dtype as a recorded op; a parameter's cast is cached for the region."""
    from .ops import cast

    return _per_region(region, (id(tensor), np.dtype(dtype).str), tensor, lambda: cast(tensor, dtype))


def plan(op, tensors: list) -> tuple[list, np.dtype | None, np.dtype | None]:
    """How ``op`` (a Function class) treats ``tensors``: (tensors, compute, result).

    ``tensors`` may be replaced by recorded casts; forward sees their arrays as
    :func:`operands` gives them and backward its gradient in ``compute`` (None: as they are);
    the output is rounded to ``result`` (None: as computed)."""
    region = _current()
    bf16 = loaded_bfloat16()  # None: nothing can be bfloat16 yet
    if region is None and (bf16 is None or not any(t.data.dtype is bf16 for t in tensors)):
        return tensors, None, None  # the float32/float64 path every op takes outside autocast
    floats = [t for t in tensors if is_float(t.dtype)]
    if not floats:
        return tensors, None, None
    rule = getattr(op, "amp", None)
    if region is not None and rule == "lower":  # float32 inputs rounded by operands()
        return tensors, _lower_compute(bf16), bf16
    if rule == "lower" and all(is_bfloat16(t.dtype) for t in floats):  # bfloat16 tensors, no autocast
        return tensors, _lower_compute(bf16), bf16
    if rule == "float32_math" and is_bfloat16(tensors[0].dtype):  # the activations stay bfloat16
        activation = tensors[0].shape  # the input, and a residual added to the output
        return (
            tensors[:1]
            + [
                _cast(t, np.float32, region) if is_bfloat16(t.dtype) and t.shape != activation else t
                for t in tensors[1:]
            ],
            None,
            None,
        )
    if region is not None and rule in ("float32", "float32_math"):
        tensors = [_cast(t, np.float32, region) if is_bfloat16(t.dtype) else t for t in tensors]
        return tensors, None, None
    all_bf16 = all(is_bfloat16(t.dtype) for t in floats)
    if getattr(op, "moves_bytes", False) or (all_bf16 and getattr(op, "bfloat16_kernels", False)):
        return tensors, None, None
    if not any(is_bfloat16(t.dtype) for t in floats):
        return tensors, None, None
    widest = np.result_type(*[np.float32 if is_bfloat16(t.dtype) else t.dtype for t in floats])
    return tensors, widest, (bf16 if all_bf16 else None)


def operands(op, tensors: list, compute: np.dtype | None) -> list:
    """The arrays ``op``'s forward sees (``compute`` from :func:`plan`): inside autocast, a
    lower-precision op's float32 and float64 inputs rounded to bfloat16 (a parameter's rounding
    cached for the region); then bfloat16 arrays widened to ``compute`` where that is float32
    or float64 (exact)."""
    arrays = [t.data for t in tensors]
    if compute is None:
        return arrays
    region = _current()
    if region is not None and getattr(op, "amp", None) == "lower":
        arrays = [
            a if is_bfloat16(a.dtype) or not is_float(a.dtype) else _rounded(t, region, compute)
            for t, a in zip(tensors, arrays)
        ]
    if is_bfloat16(compute):
        return arrays
    return [convert(a, compute) if is_bfloat16(a.dtype) else a for a in arrays]


def _rounded(tensor, region, compute: np.dtype) -> np.ndarray:
    """tensor's values rounded to bfloat16, held in ``compute`` (bfloat16, or float32 on the
    widening road); a parameter's made once per region (:func:`_per_region`)."""

    def make() -> np.ndarray:
        rounded = convert(tensor.data, loaded_bfloat16())
        return rounded if is_bfloat16(compute) else convert(rounded, compute)

    return _per_region(region, id(tensor), tensor, make)


def bfloat16_support() -> str:
    """What bfloat16 brings on this CPU, from its feature flags."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        flags = []
    found = [f for f in ("avx512_bf16", "amx_bf16") if f in flags]
    hardware = f"this CPU has {', '.join(found)}" if found else "this CPU has no AVX512_BF16 or AMX-BF16"
    if BF16_KERNEL == "float32":
        return (
            f"bfloat16 numbers (bfloat16-rounded operands, float32 accumulation) on the float32 kernels; "
            f"{hardware}, but the bfloat16 road in use is float32 widening, so autocast brings no speed"
        )
    return (
        f"bfloat16 arithmetic: matmul, linear and conv2d run on the {BF16_KERNEL} bfloat16 GEMM "
        f"(float32 accumulation); {hardware}"
    )
