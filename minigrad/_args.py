"""Parsing of hyper-parameters that users may give as an int or as an (height, width) pair:
one parser, so every entry point (functional, layer, op, transform) accepts the same values
and refuses the others with the same errors."""

from __future__ import annotations

import numpy as np

from . import _C


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def count(value, name: str, op: str, minimum: int = 1) -> int:
    """A whole number of things (channels, features, classes) of at least ``minimum``: the
    scalar form of :func:`pair`, with the same errors."""
    if not _is_int(value):
        raise TypeError(f"{op}: {name} must be an int, got {value!r}")
    return pair(value, name, op, minimum)[0]


def pair(value, name: str, op: str, minimum: int | None = None, none_ok: bool = False) -> tuple:
    """``value`` (an int, or a 2-sequence of ints) as ``(height, width)``.

    TypeError names ``op`` and ``name`` when it is neither; ValueError when an entry is below
    ``minimum`` (if given) or beyond +-``_C.MAX_SIZE`` (2**48, the compiled kernels' size
    bound, so every value also fits their 64-bit arithmetic). With ``none_ok``, entries may be
    None (adaptive pooling: keep the input's size). Rules about how the values combine with the
    input's shape are the op's (conv/pool: csrc/bind/, through _C.*_output_shape)."""

    def ok(v) -> bool:
        return _is_int(v) or (none_ok and v is None)

    result = None
    if _is_int(value):
        result = int(value), int(value)
    elif not isinstance(value, (str, bytes)):
        try:
            first, second = value
        except (TypeError, ValueError):
            pass
        else:
            if ok(first) and ok(second):
                result = tuple(None if v is None else int(v) for v in (first, second))
    if result is None:
        kind = "an int or a pair of ints" + (" (or None)" if none_ok else "")
        raise TypeError(f"{op}: {name} must be {kind}, got {value!r}")
    values = [v for v in result if v is not None]
    low = -_C.MAX_SIZE if minimum is None else minimum
    if any(v < low for v in values):
        raise ValueError(f"{op}: {name} must be >= {low}, got {value!r}")
    if any(v > _C.MAX_SIZE for v in values):
        raise ValueError(f"{op}: {name} {result} is too large (sizes must lie in [0, 2**48])")
    return result
