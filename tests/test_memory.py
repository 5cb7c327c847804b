"""Training loops must not leak: after backward the tape is gone, so 2,000 steps of a small
MLP keep resident memory and the number of live Python objects flat."""

import gc
import os
import resource

import numpy as np

import minigrad as mg
import minigrad.nn.functional as F


def resident_bytes() -> int:
    """Current resident set size (Linux /proc), else the peak (still monotone, so still a bound)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def test_two_thousand_training_steps_keep_memory_flat():
    rng = np.random.default_rng(0)
    x = mg.tensor(rng.standard_normal((32, 16)).astype(np.float32))
    y = rng.integers(0, 4, 32)
    params = [
        mg.tensor(0.3 * rng.standard_normal(s).astype(np.float32), requires_grad=True)
        for s in ((16, 32), (32,), (32, 4), (4,))
    ]

    def step():
        w1, b1, w2, b2 = params
        loss = F.cross_entropy((x @ w1 + b1).relu() @ w2 + b2, y)
        loss.backward()
        with mg.no_grad():
            for p in params:
                p -= 0.05 * p.grad
                p.grad = None
        return loss.item()

    first = [step() for _ in range(200)][0]  # warm-up: allocator pools, caches
    gc.collect()
    memory, objects = resident_bytes(), len(gc.get_objects())
    for _ in range(2000):
        last = step()
    gc.collect()
    grown_bytes, grown_objects = resident_bytes() - memory, len(gc.get_objects()) - objects
    assert last < 0.5 * first, "the model did not train, so the loop did not exercise backward"
    assert grown_bytes < 4 * 2**20, f"resident memory grew by {grown_bytes / 2**20:.1f} MiB over 2,000 steps"
    assert grown_objects < 200, f"{grown_objects} more live Python objects after 2,000 steps"
