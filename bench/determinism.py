"""Same seed, same numbers at any thread count: the five training workloads and `minigrad train`.

    python -m bench.determinism [--threads 1,2,4,8,16] [--steps 3]

Each training workload of bench/workloads/training.py runs --steps steps from the same seed at
every thread count, with every parallel call given the whole team (the cost model and the load
shrinking switched off, so each count really runs that team), and `minigrad train` runs one
short epoch at each count with --threads. It prints a SHA-256 digest of the losses and final
weights per count and exits 1 if any two differ. More threads than cores is fine here: it
checks numbers, not speed. (tests/test_threads_policy.py does the same at 1, 2 and 3 threads.)
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _workload_digest(case, steps: int) -> str:
    from bench.workloads.training import minigrad_training

    _, build, _, shape, batch, make_optimizer = case
    model, step = minigrad_training(build, shape, batch, make_optimizer)
    h = hashlib.sha256()
    for _ in range(steps):
        h.update(np.float64(step().item()).tobytes())
    for p in model.parameters():
        h.update(np.ascontiguousarray(p.numpy()).tobytes())
    return h.hexdigest()[:16]


def _train_digest(threads: int, folder: str) -> str:
    import minigrad as mg

    out = os.path.join(folder, f"t{threads}")
    cmd = [sys.executable, "-c", "import sys; from minigrad.cli import main; sys.exit(main(sys.argv[1:]))", "train"]
    cmd += ["--epochs", "1", "--train-size", "600", "--threads", str(threads), "--out", out]
    subprocess.run(cmd, check=True, capture_output=True)
    saved = mg.io.load(os.path.join(out, "last.safetensors"))
    saved.pop("checkpoint.json")  # holds wall-clock times
    h = hashlib.sha256()
    for key in sorted(saved):
        h.update(key.encode() + np.asarray(saved[key]).tobytes())
    return h.hexdigest()[:16]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", default="1,2,4,8,16")
    p.add_argument("--steps", type=int, default=3)
    args = p.parse_args(argv)
    counts = [int(t) for t in args.threads.split(",")]

    import minigrad as mg
    from bench.workloads.training import CASES

    mg.set_thread_policy(size_by_work=False, shrink_when_busy=False)
    rows = []
    for case in CASES:
        digests = []
        for t in counts:
            mg.set_num_threads(t)
            digests.append(_workload_digest(case, args.steps))
        rows.append((case[0], digests))
        print(f"{case[0]:32} " + " ".join(digests), flush=True)
    with tempfile.TemporaryDirectory() as folder:
        digests = [_train_digest(t, folder) for t in counts]
    rows.append(("minigrad train (1 epoch)", digests))
    print(f"{'minigrad train (1 epoch)':32} " + " ".join(digests))
    print()
    print("| run | " + " | ".join(f"{t} threads" for t in counts) + " | identical |")
    print("|---|" + "---|" * (len(counts) + 1))
    same = True
    for name, digests in rows:
        ok = len(set(digests)) == 1
        same &= ok
        print(f"| {name} | " + " | ".join(f"`{d}`" for d in digests) + f" | {'yes' if ok else 'NO'} |")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
