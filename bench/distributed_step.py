"""Data-parallel step time: ResNet-8 at a global batch of 128, on however many ranks it is
launched with; prints one JSON line from rank 0.

    python bench/distributed_step.py --threads 2                      # 1 rank x 2 threads
    mpirun -n 2 python bench/distributed_step.py --threads 1          # 2 ranks x 1 thread

Fields: step time (median and mean, ms), the part of each step spent waiting for all-reduces
after backward (the communication backward did not hide), the same all-reduces timed on their
own after backward (the whole communication), and the fraction hidden = 1 - waited / whole.
"""

import argparse
import json
import time

import numpy as np

import minigrad as mg
from minigrad import distributed as dist
from minigrad.nn import functional as F
from minigrad.nn.parallel import DistributedDataParallel


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet8")
    parser.add_argument("--batch", type=int, default=128, help="global batch, split between the ranks")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        mg.set_num_threads(args.threads)
    dist.init_process_group()
    world, rank = dist.get_world_size(), dist.get_rank()
    mg.manual_seed(0)
    model = mg.models.create(args.model, (3, 32, 32))
    ddp = DistributedDataParallel(model)
    optimizer = mg.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    local = args.batch // world
    rng = np.random.default_rng(rank)
    x = mg.tensor(rng.standard_normal((local, 3, 32, 32)).astype(np.float32))
    y = mg.tensor(rng.integers(0, 10, local))

    def step():
        optimizer.zero_grad()
        F.cross_entropy(ddp(x), y).backward()
        optimizer.step()

    for _ in range(3):
        step()
    times, waits, whole = [], [], []
    grads = [p.grad.data for p in model.parameters() if p.grad is not None]
    for _ in range(args.steps):
        dist.barrier() if world > 1 else None
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
        waits.append(ddp.last_wait_seconds)
        packed = np.concatenate([g.reshape(-1) for g in grads])  # the same bytes, all-reduced on their own
        dist.barrier() if world > 1 else None
        start = time.perf_counter()
        dist.start_all_reduce(packed, dist.ReduceOp.AVG).wait()
        whole.append(time.perf_counter() - start)
    if rank == 0:
        waited, total = float(np.median(waits)), float(np.median(whole))
        print(json.dumps({
            "model": args.model, "global_batch": args.batch, "ranks": world, "threads": mg.get_num_threads(),
            "step_ms_median": float(np.median(times)) * 1e3, "step_ms_mean": float(np.mean(times)) * 1e3,
            "waited_ms": waited * 1e3, "allreduce_ms": total * 1e3,
            "hidden_fraction": (1 - waited / total) if world > 1 and total > 0 else None,
        }))  # fmt: skip


if __name__ == "__main__":
    main()
