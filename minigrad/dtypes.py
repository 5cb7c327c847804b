"""The dtypes a Tensor may hold, and which of them are floating point: one home for those rules.

bfloat16 comes from the ``ml_dtypes`` package (numpy's bfloat16, the one JAX uses; ``pip install
"minigrad[bf16]"``): 8 exponent bits like float32, 8 significant bits (7 stored), so a float32
rounds to it by keeping the top 16 bits (round to nearest even). numpy gives it kind "V", not
"f": ask :func:`is_float`, never ``dtype.kind == "f"``.
"""

from __future__ import annotations

import sys

import numpy as np

# ml_dtypes is imported on first use of bfloat16, not with minigrad: its import registers every
# one of its types with numpy, which took 1.4 s of `import minigrad`'s 1.8 (numpy 2.4,
# ml_dtypes 0.7), paid by every process, most of which never touch bfloat16.
_bfloat16_dtype = None  # np.dtype(ml_dtypes.bfloat16) once imported
_OTHER_DTYPES = (np.float32, np.float64, np.int64, np.int32, np.uint8, np.bool_)


def bfloat16_type() -> type | None:
    """ml_dtypes' bfloat16 (imported now if it was not yet), or None without ml_dtypes."""
    global _bfloat16_dtype
    if _bfloat16_dtype is None:
        try:
            from ml_dtypes import bfloat16
        except ImportError:  # optional: everything but bfloat16 storage and autocast works without it
            return None
        _bfloat16_dtype = np.dtype(bfloat16)
    return _bfloat16_dtype.type


def loaded_bfloat16() -> np.dtype | None:
    """bfloat16's dtype once ml_dtypes is imported (by minigrad or by the program), else None:
    no array can be bfloat16 before that, so asking imports nothing."""
    if _bfloat16_dtype is None and "ml_dtypes" in sys.modules:
        bfloat16_type()
    return _bfloat16_dtype


def __getattr__(name: str):
    if name == "bfloat16":  # dtypes.bfloat16 (and minigrad.bfloat16): imported on first use
        return bfloat16_type()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def as_dtype(spec) -> np.dtype:
    """``np.dtype(spec)``, where the name ``"bfloat16"`` imports ml_dtypes first (numpy learns
    the name from it)."""
    if isinstance(spec, str) and spec == "bfloat16":
        return np.dtype(require_bfloat16('dtype "bfloat16"'))
    return np.dtype(spec)


def is_float(dtype) -> bool:
    """float32, float64 or bfloat16."""
    dtype = np.dtype(dtype)
    return dtype.type is np.float32 or dtype.type is np.float64 or is_bfloat16(dtype)


def is_bfloat16(dtype) -> bool:
    bf16 = loaded_bfloat16()
    return bf16 is not None and np.dtype(dtype) == bf16


def is_supported(dtype: np.dtype) -> bool:
    """Whether a Tensor may hold ``dtype``: the floats, int64, int32, uint8 and bool."""
    return dtype.type in _OTHER_DTYPES or is_bfloat16(dtype)


SUPPORTED_NAMES = "float32, float64, bfloat16, int64, int32, uint8, bool"


def convert(array, dtype) -> np.ndarray:
    """``array`` as ``dtype`` (itself when it already is, like ``np.asarray``). float32 <->
    bfloat16 run on the compiled kernel (``_C.convert``: round to nearest even, threaded);
    ml_dtypes' own casts go one value at a time, 5-40x slower on autocast's activations."""
    array = np.asarray(array)
    dtype = np.dtype(dtype)
    if array.dtype == dtype:
        return array
    bf16 = loaded_bfloat16()  # an array or dtype of bfloat16 means ml_dtypes is imported
    if bf16 is not None and (array.dtype, dtype) in ((np.float32, bf16), (bf16, np.float32)):
        from . import _C  # the extension imports after this module

        source = array if array.flags.c_contiguous else array.copy(order="C")  # (ascontiguousarray makes 0-d 1-d)
        out = np.empty(source.shape, dtype)
        _C.convert(
            source.view(np.uint16) if dtype.type is np.float32 else source,
            out.view(np.uint16) if dtype == bf16 else out,
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
    bfloat16 = bfloat16_type()
    if bfloat16 is None:
        raise ImportError(f"{what} needs bfloat16 from the ml_dtypes package: pip install ml_dtypes")
    return bfloat16
