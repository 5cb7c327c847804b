"""The dtypes a Tensor may hold, and which of them are floating point: one home for those rules.

bfloat16 comes from the ``ml_dtypes`` package (numpy's bfloat16, the one JAX uses; ``pip install
"minigrad[bf16]"``): 8 exponent bits like float32, 8 significant bits (7 stored), so a float32
rounds to it by keeping the top 16 bits (round to nearest even). numpy gives it kind "V", not
"f": ask :func:`is_float`, never ``dtype.kind == "f"``.
"""

from __future__ import annotations

import numpy as np

try:
    from ml_dtypes import bfloat16
except ImportError:  # optional: everything but bfloat16 storage and autocast works without it
    bfloat16 = None

FLOAT_DTYPES = tuple(t for t in (np.float32, np.float64, bfloat16) if t is not None)
SUPPORTED_DTYPES = (*FLOAT_DTYPES, np.int64, np.int32, np.uint8, np.bool_)


def is_float(dtype) -> bool:
    """float32, float64 or bfloat16."""
    return np.dtype(dtype).type in FLOAT_DTYPES


def is_bfloat16(dtype) -> bool:
    return bfloat16 is not None and np.dtype(dtype) == bfloat16


def convert(array, dtype) -> np.ndarray:
    """``array`` as ``dtype`` (itself when it already is, like ``np.asarray``). float32 <->
    bfloat16 run on the compiled kernel (``_C.convert``: round to nearest even, threaded);
    ml_dtypes' own casts go one value at a time, 5-40x slower on autocast's activations."""
    array = np.asarray(array)
    dtype = np.dtype(dtype)
    if array.dtype == dtype:
        return array
    pair = (array.dtype.type, dtype.type)
    if bfloat16 is not None and pair in ((np.float32, bfloat16), (bfloat16, np.float32)):
        from . import _C  # the extension imports after this module

        source = array if array.flags.c_contiguous else array.copy(order="C")  # (ascontiguousarray makes 0-d 1-d)
        out = np.empty(source.shape, dtype)
        _C.convert(
            source.view(np.uint16) if dtype.type is np.float32 else source,
            out.view(np.uint16) if dtype.type is bfloat16 else out,
        )
        return out
    return array.astype(dtype)


def array_of(value: object) -> object:
    """A Tensor's array (``.data``); an array, a number or a list as it is. (Not
    ``getattr(value, "data", value)``: an ndarray's own ``.data`` is a memoryview, which a
    bfloat16 array cannot make.)"""
    return value if isinstance(value, (np.ndarray, np.generic)) else getattr(value, "data", value)


def bf16_bits(a: np.ndarray | None) -> np.ndarray | None:
    """What the compiled kernels take: a bfloat16 array as its uint16 bits (the same memory),
    any other array (or None) as it is."""
    return a.view(np.uint16) if a is not None and is_bfloat16(a.dtype) else a


def require_bfloat16(what: str) -> type:
    """The bfloat16 dtype, or an ImportError that says how to get it."""
    if bfloat16 is None:
        raise ImportError(f"{what} needs bfloat16 from the ml_dtypes package: pip install ml_dtypes")
    return bfloat16
