"""Where a second thread starts to pay, per kernel family: the measurements behind the cost model.

    python -m bench.crossover [--threads 2] [--repeat 7] [--gap-us 20]

For each family (csrc/parallel.h, ``Work``) it times one kernel over a ladder of sizes at one
thread and at ``--threads`` threads, with every call given the whole team (the cost model
switched off) and the load shrinking off. Between calls a short busy pause in Python stands in
for the interpreter's work between two kernels of a training step, so the workers' wait
policy (spin, then sleep) plays as it does in training. It prints per family:

- ``rate``: units of work one thread does per microsecond (the largest size, one thread);
- ``crossover``: the smallest size at which the team beat one thread (interpolated in log
  size between the ladder's rungs), in the family's units;
- ``member_us``: the cost of one more team member that crossover implies: in the model
  T(t) = work / rate + member_us * (t - 1), t threads beat one from work = rate * member_us * t;
- the model's crossover with the constants in csrc/parallel.cpp, for comparison.

Run it on a quiet machine; the figures in csrc/parallel.cpp came from it.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import numpy as np


def _pause(us: float) -> None:
    end = time.perf_counter() + us * 1e-6
    while time.perf_counter() < end:
        pass


def _kernels():
    """(family, [(work, call), ...]) with sizes from far below to far above a crossover."""
    from minigrad import _C

    rng = np.random.default_rng(0)
    out = []

    def eltwise(n):
        x = rng.standard_normal(n).astype(np.float32)
        y = np.empty_like(x)
        return n, lambda: _C.relu_forward(x, y)

    def optim(n):
        params = [rng.standard_normal(n // 4).astype(np.float32) for _ in range(4)]
        grads = [rng.standard_normal(n // 4).astype(np.float32) for _ in range(4)]
        bufs = [np.zeros(n // 4, np.float32) for _ in range(4)]
        kw = dict(
            lr=0.01, momentum=0.9, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False, first_step=False
        )
        return 4 * (n // 4), lambda: _C.sgd_step(params, grads, bufs, **kw)

    def batchnorm(n):
        c, s = 16, 64
        x = rng.standard_normal((max(1, n // (c * s)), c, s)).astype(np.float32)
        y, m, v = np.empty_like(x), np.empty(c, np.float32), np.empty(c, np.float32)
        rm, rv, g, b = np.zeros(c, np.float32), np.ones(c, np.float32), np.ones(c, np.float32), np.zeros(c, np.float32)
        return x.size, lambda: _C.batch_norm_forward_train(x, g, b, rm, rv, y, m, v, 0.1, 1e-5)

    def pool(n):
        planes = max(1, n // (14 * 14 * 4))
        x = rng.standard_normal((1, planes, 28, 28)).astype(np.float32)
        y = np.empty((1, planes, 14, 14), np.float32)
        idx = np.empty(y.shape, np.int64)
        return y.size * 4, lambda: _C.max_pool2d_forward(x, y, idx, (2, 2), (2, 2))

    def conv(n):  # ResNet-8's 16-channel 3x3 layer on 8x8 images, n flop
        per_image = 2 * 16 * 16 * 9 * 8 * 8
        images = max(1, n // per_image)
        x = rng.standard_normal((images, 16, 8, 8)).astype(np.float32)
        w = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
        y = np.empty((images, 16, 8, 8), np.float32)
        return images * per_image, lambda: _C.conv2d_forward(x, w, None, y, (1, 1), (1, 1))

    def gemm(n):  # square products, n multiply-adds
        m = max(4, round(n ** (1 / 3)))
        a, b = rng.standard_normal((1, m, m)).astype(np.float32), rng.standard_normal((1, m, m)).astype(np.float32)
        c = np.empty((1, m, m), np.float32)
        return m**3, lambda: _C.gemm(a, b, c)

    ladder = [2**e for e in range(10, 27)]
    for family, make, top in (
        ("eltwise", eltwise, 2**22),
        ("optim", optim, 2**22),
        ("batchnorm", batchnorm, 2**22),
        ("pool", pool, 2**22),
        ("conv", conv, 2**27),
        ("gemm", gemm, 2**25),
    ):
        out.append((family, [make(n) for n in ladder + [top] if n <= top]))
    return out


def _time(call, repeat: int, gap_us: float) -> float:
    """Median microseconds per call, calls separated by a Python pause of gap_us."""
    calls = 1
    while True:  # enough calls per sample for ~20 ms
        start = time.perf_counter()
        for _ in range(calls):
            call()
            _pause(gap_us)
        if time.perf_counter() - start > 0.02:
            break
        calls *= 2
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(calls):
            call()
            _pause(gap_us)
        samples.append((time.perf_counter() - start) / calls * 1e6 - gap_us)
    return statistics.median(samples)


def measure(threads: int, repeat: int, gap_us: float, families: list[str] | None = None) -> list[dict]:
    import minigrad

    minigrad.set_thread_policy(size_by_work=False, shrink_when_busy=False)
    rows = []
    for family, sizes in _kernels():
        if families and family not in families:
            continue
        points = []
        for work, call in sizes:
            minigrad.set_num_threads(1)
            one = _time(call, repeat, gap_us)
            minigrad.set_num_threads(threads)
            team = _time(call, repeat, gap_us)
            points.append((work, one, team))
        work_top, one_top, _ = points[-1]
        rate = work_top / one_top
        crossover = None
        for (w0, a0, b0), (w1, a1, b1) in zip(points, points[1:]):
            if a0 <= b0 and a1 > b1:  # the team's curve crosses below between w0 and w1
                d0, d1 = math.log(b0 / a0), math.log(b1 / a1)
                f = d0 / (d0 - d1)
                crossover = math.exp(math.log(w0) + f * (math.log(w1) - math.log(w0)))
        # T(t) = W/rate + m (t - 1): t threads beat one from W = rate * m * t
        member_us = crossover / (rate * threads) if crossover else None
        rows.append(
            dict(
                family=family,
                rate=rate,
                crossover=crossover,
                member_us=member_us,
                model_crossover=minigrad.thread_info()["crossover"][family],
                points=points,
            )
        )
    minigrad.set_thread_policy(size_by_work=True, shrink_when_busy=True)
    return rows


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2, help="the team compared with one thread")
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--gap-us", type=float, default=20.0, help="Python pause between calls")
    p.add_argument("--points", action="store_true", help="print every size's times too")
    p.add_argument("--family", action="append", help="only this family (repeatable)")
    args = p.parse_args(argv)
    import minigrad

    print(f"isa {minigrad.backend_info()['isa']}, {args.threads} threads vs 1, gap {args.gap_us:g} us")
    print(f"{'family':10} {'rate/us':>10} {'crossover':>12} {'member_us':>10} {'model':>10}")
    for r in measure(args.threads, args.repeat, args.gap_us, args.family):
        cross = f"{r['crossover']:.3g}" if r["crossover"] else "none"
        member = f"{r['member_us']:.1f}" if r["member_us"] else "-"
        print(f"{r['family']:10} {r['rate']:10.0f} {cross:>12} {member:>10} {r['model_crossover']:>10}")
        if args.points:
            for work, one, team in r["points"]:
                print(f"    {work:>12} {one:10.1f} us {team:10.1f} us  x{one / team:.2f}")


if __name__ == "__main__":
    main()
