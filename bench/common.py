"""What a benchmark workload is: the runner (bench/run.py) times these, one side per process."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

Step = Callable[[], None]


@dataclass
class Workload:
    """``setup_minigrad()`` / ``setup_torch()`` build inputs (and models) and return a
    zero-argument function that runs one repetition. ``flop`` or ``bytes`` per repetition turn
    times into GFLOP/s or GB/s. Setups import torch inside themselves, never at module level:
    the minigrad side's process must not load a second OpenMP runtime."""

    name: str
    group: str
    setup_minigrad: Callable[[], Step]
    setup_torch: Callable[[], Step] | None = None
    flop: float = 0.0
    bytes: float = 0.0
    # A third side for workloads numpy can run too (GEMM): timed under the machine's
    # OpenBLAS settings and with OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset.
    setup_numpy: Callable[[], Step] | None = None
