"""Where a training step's time goes: per-op forward/backward wall time from the tape's
profiler hook, the optimiser step, and what is left (Python and engine overhead).

    python bench/profile_step.py --model resnet8 --batch 128 --optimizer sgd --threads 2
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import minigrad as mg
from minigrad import models, optim
from minigrad.inspect import profile
from minigrad.nn import functional as F

BUILDERS = {
    "lenet5": (models.lenet5, (1, 28, 28)),
    "resnet8": (models.resnet8, (3, 32, 32)),
    "resnet20": (models.resnet20, (3, 32, 32)),
    "mlp": (lambda: models.mlp([784, 512, 256, 10], batchnorm=True, dropout=0.5), (784,)),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(BUILDERS), default="resnet8")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--optimizer", choices=["sgd", "adam", "rmsprop"], default="adam")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--autocast", action="store_true", help="run forward under bfloat16 autocast")
    args = parser.parse_args()
    if args.threads:
        mg.set_num_threads(args.threads)
    mg.manual_seed(0)
    build, shape = BUILDERS[args.model]
    model = build()
    make = {
        "sgd": lambda p: optim.SGD(p, lr=0.01, momentum=0.9),
        "adam": lambda p: optim.Adam(p, lr=1e-3),
        "rmsprop": lambda p: optim.RMSprop(p, lr=1e-3),
    }[args.optimizer]
    opt = make(model.parameters())
    x = mg.randn(args.batch, *shape)
    y = mg.tensor(np.random.default_rng(0).integers(0, 10, args.batch))

    def step():
        opt.zero_grad()
        with mg.autocast("cpu", dtype=mg.bfloat16, enabled=args.autocast):
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    per_step = (time.perf_counter() - start) / args.steps
    with profile() as prof:
        for _ in range(args.steps):
            step()
    start = time.perf_counter()
    for _ in range(args.steps):
        opt.step()
    opt_time = (time.perf_counter() - start) / args.steps
    in_ops = sum(row[1] for row in prof.rows.values()) / args.steps
    print(
        f"{args.model} batch {args.batch} {args.optimizer}, {mg.get_num_threads()} threads: "
        f"{per_step * 1e3:.2f} ms per step"
    )
    for (name, phase), (calls, seconds, *_) in sorted(prof.rows.items(), key=lambda kv: -kv[1][1]):
        print(f"  {name:18s} {phase:8s} {calls // args.steps:4d} calls  {seconds / args.steps * 1e3:8.3f} ms")
    print(f"  optimiser step                        {opt_time * 1e3:8.3f} ms")
    print(f"  outside ops and step                  {(per_step - in_ops - opt_time) * 1e3:8.3f} ms")


if __name__ == "__main__":
    main()
