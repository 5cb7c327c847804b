"""Per-op Python overhead of the tape: microseconds for ``a + b`` on 1-element tensors.

Method: ``timeit`` runs each statement in a loop long enough to take ~0.2 s (``autorange``),
seven times; the minimum over the seven, divided by the loop count, is the figure (the minimum
is the run least disturbed by other processes). Shapes are (1,) float32, so the time is all
bookkeeping: wrapping arrays, recording the node, the backward walk and accumulation.

    python bench/overhead.py            # minigrad, and numpy / PyTorch for scale when present
"""

from __future__ import annotations

import timeit

import numpy as np

import minigrad as mg


def per_call_us(statement, setup_globals, repeat=7) -> float:
    timer = timeit.Timer(statement, globals=setup_globals)
    number, _ = timer.autorange()
    number = max(number, 1000)
    return min(timer.repeat(repeat=repeat, number=number)) / number * 1e6


def measure() -> dict[str, float]:
    a = mg.tensor([1.5], requires_grad=True)
    b = mg.tensor([2.5], requires_grad=True)
    plain_a, plain_b = mg.tensor([1.5]), mg.tensor([2.5])
    scope = dict(a=a, b=b, pa=plain_a, pb=plain_b, mg=mg, x=np.float32([1.5]), y=np.float32([2.5]))
    results = {
        "numpy x + y (reference)": per_call_us("x + y", scope),
        "minigrad a + b, no grad": per_call_us("pa + pb", scope),
        "minigrad a + b, recorded (forward only)": per_call_us("a + b", scope),
        "minigrad a + b, forward + backward": per_call_us("(a + b).backward()", scope),
        "minigrad a * b, forward + backward": per_call_us("(a * b).backward()", scope),
    }
    try:
        import torch
    except ImportError:
        return results
    torch.set_num_threads(1)
    ta = torch.tensor([1.5], requires_grad=True)
    tb = torch.tensor([2.5], requires_grad=True)
    scope.update(ta=ta, tb=tb)
    results["torch a + b, forward + backward (reference)"] = per_call_us("(ta + tb).backward()", scope)
    return results


def main() -> None:
    for name, us in measure().items():
        print(f"{name:48s} {us:8.2f} us")


if __name__ == "__main__":
    main()
