"""Run under mpirun by test_distributed.py (and on its own as a group of one):

worker.py equivalence MODEL OPTIMIZER DTYPE OUT   train 20 steps, global batch 64; rank 0 saves the parameters
worker.py no_sync OUT                             two accumulated micro-batches per step (no_sync), then a step
worker.py collectives OUT                         all_reduce / broadcast / all_gather results
worker.py raise | kill                            rank 1 fails; the others wait in a barrier
"""

import json
import os
import signal
import sys

import numpy as np

import minigrad as mg
from minigrad import distributed as dist
from minigrad import nn, optim
from minigrad.data import DataLoader, DistributedSampler, TensorDataset
from minigrad.nn import functional as F
from minigrad.nn.parallel import DistributedDataParallel

GLOBAL_BATCH, STEPS = 64, 20


def data(dtype, images: bool):
    rng = np.random.default_rng(0)
    n = GLOBAL_BATCH * STEPS
    x = rng.standard_normal((n, 1, 8, 8) if images else (n, 20)).astype(dtype)
    y = rng.integers(0, 5, n)
    return TensorDataset(x, y)


def model(kind, dtype):
    mg.manual_seed(1)  # rank 0's weights win anyway (DistributedDataParallel broadcasts them)
    if kind == "mlp":
        net = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 5))
    else:
        net = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
            nn.Conv2d(8, 8, 3, padding=1, stride=2, bias=False),
            nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 16, 5),
        )  # fmt: skip
        net = nn.SyncBatchNorm.convert_sync_batchnorm(net)
    return net.to(np.dtype(dtype))


def save(path, net):
    if dist.get_rank() == 0:
        state = {k: v.data if hasattr(v, "data") else v for k, v in net.state_dict().items()}
        np.savez(path, **state)


def equivalence(kind, opt_name, dtype, out):
    net = model(kind, dtype)
    ddp = DistributedDataParallel(net)
    opt = (
        optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
        if opt_name == "sgd"
        else optim.Adam(net.parameters(), lr=1e-3)
    )
    dataset = data(dtype, kind == "cnn")
    sampler = DistributedSampler(dataset, shuffle=True, seed=3)
    loader = DataLoader(dataset, batch_size=GLOBAL_BATCH // dist.get_world_size(), sampler=sampler)
    for x, y in loader:
        loss = F.cross_entropy(ddp(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    save(out, net)


def no_sync(out):
    net = model("mlp", "float64")
    ddp = DistributedDataParallel(net)
    opt = optim.SGD(net.parameters(), lr=0.1)
    dataset = data("float64", False)
    sampler = DistributedSampler(dataset, shuffle=False)
    per_rank = GLOBAL_BATCH // dist.get_world_size()
    loader = DataLoader(dataset, batch_size=per_rank // 2, sampler=sampler)  # two micro-batches per step
    batches = iter(loader)
    for _ in range(5):
        opt.zero_grad()
        x, y = next(batches)
        with ddp.no_sync():
            (F.cross_entropy(ddp(x), y) / 2).backward()
        x, y = next(batches)
        (F.cross_entropy(ddp(x), y) / 2).backward()
        opt.step()
    save(out, net)


def collectives(out):
    rank, world = dist.get_rank(), dist.get_world_size()
    results = {}
    for op in ("sum", "avg", "max", "min", "product"):
        t = mg.tensor(np.array([rank + 1.0, 2.0 * (rank + 1)]))
        dist.all_reduce(t, dist.ReduceOp(op))
        results[op] = t.data.tolist()
    t = mg.tensor(np.array([float(rank)] * 3))
    work = dist.all_reduce(t, async_op=True)
    work.wait()
    results["async"] = t.data.tolist()
    t = mg.tensor(np.full(2, 10.0 * rank))
    dist.broadcast(t, src=1)
    results["broadcast"] = t.data.tolist()
    gathered = [mg.zeros(2, dtype=np.float64) for _ in range(world)]
    dist.all_gather(gathered, mg.tensor(np.full(2, float(rank))))
    results["all_gather"] = [g.data.tolist() for g in gathered]
    try:  # different shapes on different ranks are refused, not read past
        dist.all_reduce(mg.tensor(np.zeros(rank + 1)))
        results["mismatch"] = "accepted"
    except ValueError as error:
        results["mismatch"] = str(error)
    results["rank_world"] = [rank, world]
    if rank == 0:
        with open(out, "w") as f:
            json.dump(results, f)


def fail(how):
    dist.init_process_group()
    dist.barrier()
    if dist.get_rank() == 1:
        if how == "raise":
            raise RuntimeError("something went wrong on purpose")
        os.kill(os.getpid(), signal.SIGKILL)
    dist.barrier()  # rank 0 waits here for a rank that will never come
    print("unreachable: the barrier returned", flush=True)


if __name__ == "__main__":
    dist.init_process_group()
    mode, args = sys.argv[1], sys.argv[2:]
    {"equivalence": equivalence, "no_sync": no_sync, "collectives": collectives}.get(mode, lambda *a: fail(mode))(*args)
