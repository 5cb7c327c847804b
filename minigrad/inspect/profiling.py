"""Where each millisecond of a step goes: per op and phase, the compiled kernels inside."""

from __future__ import annotations

import os

import numpy as np

from ..train.callbacks import Callback

# The compiled kernels the ops call, timed while a profile is on (the shape helpers are not).
_KERNELS = (
    "gemm",
    "gemm_bf16",
    "conv2d_forward",
    "conv2d_backward",
    "conv2d_forward_bf16",
    "conv2d_backward_bf16",
    "max_pool2d_forward",
    "max_pool2d_backward",
    "avg_pool2d_forward",
    "avg_pool2d_backward",
    "adaptive_avg_pool2d_forward",
    "adaptive_avg_pool2d_backward",
    "batch_norm_forward_train",
    "batch_norm_forward_eval",
    "batch_norm_backward",
    "relu_forward",
    "relu_backward",
    "add",
    "convert",
)


def _kernel_flops(name: str, args: tuple, kwargs: dict) -> float:
    """Floating-point operations of one matrix-product or convolution kernel call (2 per
    multiply-add), from its array arguments."""
    if name.startswith("gemm"):
        a, b, out = args[:3]
        k = a.shape[1] if len(args) > 3 and args[3] else a.shape[2]
        return 2.0 * out.size * k
    if name.startswith("conv2d_"):  # (input, weight, out | grad_output, grad_input, grad_weight, ...)
        w = args[1]
        per_output = 2.0 * w.shape[1] * w.shape[2] * w.shape[3]  # weight (C_out, C_in/groups, kH, kW)
        if "forward" in name:
            return per_output * args[3].size
        passes = sum(1 for grad in args[3:5] if grad is not None)  # dX and dW each cost a forward
        return per_output * args[2].size * passes
    return 0.0


class Profile:
    """What ``with inspect.profile() as prof:`` recorded: per op and phase (forward/backward)
    the calls, total time, the part in compiled kernels, FLOPs (matmul/conv) and bytes the
    kernels touched; and a timeline for :meth:`export_chrome_trace`."""

    def __init__(self):
        from ..threads import get_num_threads

        self.rows: dict = {}  # (op, phase) -> [calls, seconds, kernel_seconds, flops, bytes]
        self.events: list = []  # (track, name, start, seconds, args)
        self.threads = get_num_threads()
        self._origin = 0.0
        self._kernel_events: list = []

    # the tape's hook: called after each op's forward or backward
    def _record(self, name: str, phase: str, seconds: float) -> None:
        import time

        end = time.perf_counter()
        start = end - seconds
        kernel = flops = moved = 0.0
        for _, _name, kstart, kseconds, kargs in reversed(self._kernel_events):
            if kstart < start:
                break
            kernel += kseconds
            flops += kargs["flops"]
            moved += kargs["bytes"]
        self._kernel_events.clear()
        row = self.rows.setdefault((name, phase), [0, 0.0, 0.0, 0.0, 0.0])
        row[0] += 1
        row[1] += seconds
        row[2] += kernel
        row[3] += flops
        row[4] += moved
        self.events.append(("Python (ops)", f"{name} {phase}", start, seconds, {"kernel_ms": kernel * 1e3}))

    def _timed(self, name: str, kernel):
        import time

        def call(*args, **kwargs):
            start = time.perf_counter()
            try:
                return kernel(*args, **kwargs)
            finally:
                seconds = time.perf_counter() - start
                arrays = [a for a in (*args, *kwargs.values()) if isinstance(a, np.ndarray)]
                info = {"flops": _kernel_flops(name, args, kwargs), "bytes": float(sum(a.nbytes for a in arrays))}
                self._kernel_events.append(("C++ kernels", name, start, seconds, info))
                self.events.append(("C++ kernels", name, start, seconds, info))

        return call

    def table(self, sort_by: str = "total", limit: int | None = None) -> str:
        """The per-op table as text; ``sort_by`` one of total, calls, mean, kernel, gflops."""
        keys = {"total": 1, "calls": 0, "kernel": 2, "gflops": 3}
        if sort_by not in (*keys, "mean"):
            raise ValueError(f"Profile.table: sort_by must be one of {', '.join((*keys, 'mean'))}, got {sort_by!r}")
        rows = sorted(
            self.rows.items(),
            key=lambda item: -(item[1][1] / item[1][0] if sort_by == "mean" else item[1][keys[sort_by]]),
        )[:limit]
        lines = [
            f"{'op':<34}{'phase':<9}{'calls':>6}{'total ms':>10}{'mean ms':>9}{'kernel ms':>10}{'python ms':>10}"
            f"{'GFLOP':>8}{'GFLOP/s':>9}{'MB':>8}"
        ]
        for (name, phase), (calls, seconds, kernel, flops, moved) in rows:
            rate = f"{flops / kernel / 1e9:9.1f}" if flops and kernel else f"{'':>9}"
            lines.append(
                f"{name[:33]:<34}{phase:<9}{calls:>6}{seconds * 1e3:>10.3f}{seconds / calls * 1e3:>9.3f}"
                f"{kernel * 1e3:>10.3f}{(seconds - kernel) * 1e3:>10.3f}{flops / 1e9:>8.3f}{rate}{moved / 1e6:>8.2f}"
            )
        total = sum(r[1] for r in self.rows.values())
        lines.append(f"{'total':<49}{total * 1e3:>10.3f}   (threads: {self.threads})")
        return "\n".join(lines)

    def export_chrome_trace(self, path: str | os.PathLike) -> None:
        """The timeline as Trace Event Format JSON (Perfetto, chrome://tracing): a track for the
        ops as Python sees them and one for the compiled kernels they call."""
        import json

        from ..io import write_atomically

        tracks = {"Python (ops)": 1, "C++ kernels": 2}
        events = [
            {"name": "thread_name", "ph": "M", "pid": 1, "tid": tid, "args": {"name": track}}
            for track, tid in tracks.items()
        ]
        for track, name, start, seconds, args in self.events:
            events.append(
                {
                    "name": name,
                    "ph": "X",
                    "pid": 1,
                    "tid": tracks[track],
                    "ts": (start - self._origin) * 1e6,
                    "dur": seconds * 1e6,
                    "args": args,
                }
            )
        text = json.dumps({"traceEvents": events, "displayTimeUnit": "ms"})
        write_atomically(os.fspath(path), [text.encode()])


class profile:
    """``with inspect.profile() as prof:`` records every op's forward and backward and the
    compiled kernels they call; ``prof.table()``, ``prof.export_chrome_trace(path)``. Off, it
    costs nothing: the tape's hook is None and the kernels are the plain functions."""

    def __enter__(self) -> Profile:
        import time

        from .. import _C
        from ..autograd import Function

        self.result = Profile()
        self.result._origin = time.perf_counter()
        self._previous = Function.profiler
        self._kernels = {name: getattr(_C, name) for name in _KERNELS if hasattr(_C, name)}
        for name, kernel in self._kernels.items():
            setattr(_C, name, self.result._timed(name, kernel))
        Function.profiler = self.result._record
        return self.result

    def __exit__(self, *exc) -> bool:
        from .. import _C
        from ..autograd import Function

        Function.profiler = self._previous
        for name, kernel in self._kernels.items():
            setattr(_C, name, kernel)
        return False


class ProfileSteps(Callback):
    """A training callback (``fit``/``Trainer``): profiles training steps ``skip`` + 1 ..
    ``skip`` + ``steps`` (the first ones warm caches up), then writes the Chrome trace to
    ``path`` and keeps the :class:`Profile` in ``.result``. ``minigrad train --profile`` uses it."""

    def __init__(self, path: str | os.PathLike, steps: int = 5, skip: int = 2):
        super().__init__()
        self.path, self.steps, self.skip = path, steps, skip
        self.result, self._seen, self._active = None, 0, None

    def on_train_begin(self, trainer) -> None:
        if self.skip == 0:
            self._start()

    def _start(self) -> None:
        self._active = profile()
        self.result = self._active.__enter__()

    def on_batch_end(self, trainer, step: int, logs: dict) -> None:
        self._seen += 1
        if self._active is None and self.result is None and self._seen == self.skip:
            self._start()
        elif self._active is not None and self._seen == self.skip + self.steps:
            self._stop()

    def on_train_end(self, trainer) -> None:
        if self._active is not None:
            self._stop()

    def _stop(self) -> None:
        self._active.__exit__(None, None, None)
        self._active = None
        self.result.export_chrome_trace(self.path)
