"""Per-op timing through the tape's profiler hook (``Function.profiler``)."""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Iterator

from .autograd import Function


@contextlib.contextmanager
def profile() -> Iterator[defaultdict[tuple[str, str], list]]:
    """Collects per-op wall time: ``with profile() as stats: ...`` gives
    ``stats[(op_name, "forward" | "backward")] == [calls, seconds]``."""
    stats = defaultdict(lambda: [0, 0.0])

    def record(name, phase, seconds):
        entry = stats[(name, phase)]
        entry[0] += 1
        entry[1] += seconds

    previous, Function.profiler = Function.profiler, record
    try:
        yield stats
    finally:
        Function.profiler = previous
