"""Where each millisecond of a step goes: per op and phase, the compiled kernels inside."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import numpy as np

from ..train.callbacks import Callback
from .graphs import _human

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


@dataclasses.dataclass
class Memory:
    """The tape's live bytes over the profiled code: every array a recorded node keeps for
    backward, counted once however many nodes share it (a view counts the buffer it keeps
    alive), added when the op records it and taken away when backward frees it or the graph is
    dropped. ``holders_at_peak``: (op, bytes, nodes) at the peak, largest first."""

    times: list  # seconds since the profile began
    live_bytes: list
    peak_bytes: int
    peak_time: float
    holders_at_peak: list

    def summary(self) -> str:
        if not self.times:
            return "tape memory: nothing recorded for backward"
        holders = ", ".join(f"{op} {_human(size)} ({n} nodes)" for op, size, n in self.holders_at_peak[:5])
        return f"tape memory: peak {_human(self.peak_bytes)} at {self.peak_time * 1e3:.1f} ms; held then by {holders}"

    def plot(self, path: str | os.PathLike) -> Path:
        """The live bytes over time to a PNG (needs matplotlib), the peak marked."""
        from ..figures import new_figure, save_png

        if not self.times:
            raise ValueError("Memory.plot: nothing was recorded for backward while profiling")
        figure = new_figure("Memory.plot", 8, 3.2)
        axes = figure.add_subplot(1, 1, 1)
        axes.step([t * 1e3 for t in self.times], [b / 2**20 for b in self.live_bytes], where="post")
        axes.plot([self.peak_time * 1e3], [self.peak_bytes / 2**20], "o", color="#d62728")
        axes.annotate(
            f"peak {_human(self.peak_bytes)}",
            (self.peak_time * 1e3, self.peak_bytes / 2**20),
            textcoords="offset points",
            xytext=(6, -4),
            fontsize=8,
        )
        axes.set_xlabel("time (ms)")
        axes.set_ylabel("saved for backward (MiB)")
        axes.grid(alpha=0.3)
        return save_png(figure, path)


class Profile:
    """What ``with inspect.profile() as prof:`` recorded: per op and phase (forward/backward)
    the calls, total time, the part in compiled kernels, FLOPs (matmul/conv), bytes the kernels
    touched and bytes saved for backward; the tape's memory over time (:attr:`memory`); and a
    timeline for :meth:`export_chrome_trace`."""

    def __init__(self):
        from ..threads import get_num_threads

        self.rows: dict = {}  # (op, phase) -> [calls, seconds, kernel_seconds, flops, bytes, saved_bytes]
        self.events: list = []  # (track, name, start, seconds, args)
        self.threads = get_num_threads()
        self._origin = 0.0
        self._kernel_events: list = []
        self.overhead = 0.0  # seconds the profile itself spent between ops
        # memory: nodes whose state changes at the next event (recorded, or freed by backward)
        self._unsettled: list = []
        self._live: dict = {}  # id(node) -> (weakref, op, own bytes, [buffer ids])
        self._buffers: dict = {}  # id(buffer) -> [nodes holding it, bytes]
        self._live_bytes = 0
        self._collected: list = []  # ids of nodes the garbage collector took
        self._samples: list = []  # (seconds since origin, live bytes)
        self._peak = (0, 0.0, [])

    # the tape's hook: called after each op's forward or backward
    def _record(self, node, phase: str, seconds: float) -> None:
        name = getattr(node, "label", type(node).__name__)

        end = time.perf_counter()
        start = end - seconds
        self._settle(end)
        kernel = flops = moved = 0.0
        for _, _name, kstart, kseconds, kargs in reversed(self._kernel_events):
            if kstart < start:
                break
            kernel += kseconds
            flops += kargs["flops"]
            moved += kargs["bytes"]
        self._kernel_events.clear()
        row = self.rows.setdefault((name, phase), [0, 0.0, 0.0, 0.0, 0.0, 0])
        row[0] += 1
        row[1] += seconds
        row[2] += kernel
        row[3] += flops
        row[4] += moved
        self._unsettled.append((node, name, phase, row))
        self.events.append(("Python (ops)", f"{name} {phase}", start, seconds, {"kernel_ms": kernel * 1e3}))
        own = time.perf_counter() - end  # the profile's own cost, shown apart so the ops' times stay honest
        self.overhead += own
        self.events.append(("profiler", "profiler", end, own, {}))

    # ---- memory: settled one event late, when the tape has linked (forward) or freed (backward) the node
    def _settle(self, now: float) -> None:
        changed = False
        while self._collected:  # collected by the garbage collector, at any moment: settled here
            changed |= self._release(self._collected.pop())
        for node, name, phase, row in self._unsettled:
            if phase == "forward" and getattr(node, "inputs", None) is not None and id(node) not in self._live:
                row[5] += self._hold(node, name)
                changed = True
            elif phase == "backward" and getattr(node, "inputs", None) is None:
                changed |= self._release(id(node))
        self._unsettled.clear()
        if changed:
            self._sample(now)

    def _hold(self, node, name: str) -> int:
        import weakref

        from .graphs import saved_arrays

        own, keys = 0, []
        for array in saved_arrays(node):  # whole buffers: a view counts the buffer it keeps
            own += array.nbytes
            entry = self._buffers.setdefault(id(array), [0, array.nbytes])
            if entry[0] == 0:
                self._live_bytes += array.nbytes
            entry[0] += 1
            keys.append(id(array))
        key = id(node)
        # a graph dropped without backward frees its nodes when they are collected
        reference = weakref.ref(node, lambda _, key=key: self._collected.append(key))
        self._live[key] = (reference, name, own, keys)
        return own

    def _release(self, key: int) -> bool:
        entry = self._live.pop(key, None)
        if entry is None:
            return False
        for buffer in entry[3]:
            held = self._buffers[buffer]
            held[0] -= 1
            if held[0] == 0:
                self._live_bytes -= held[1]
                del self._buffers[buffer]
        return True

    def _sample(self, now: float) -> None:
        self._samples.append((now - self._origin, self._live_bytes))
        if self._live_bytes >= self._peak[0]:  # the latest moment at the peak: every holder linked
            by_op: dict = {}
            for _, name, own, _ in self._live.values():
                size, count = by_op.get(name, (0, 0))
                by_op[name] = (size + own, count + 1)
            holders = sorted(((op, size, n) for op, (size, n) in by_op.items()), key=lambda h: -h[1])
            self._peak = (self._live_bytes, now - self._origin, holders)

    def _close(self) -> None:
        """At the end: settle the last event, and let go of nodes backward freed without
        calling the hook (no gradient reached them) or that died unseen."""
        now = time.perf_counter()
        self._settle(now)
        gone = [key for key, entry in self._live.items() if getattr(entry[0](), "inputs", None) is None]
        if any([self._release(key) for key in gone]):
            self._sample(now)
        self._live.clear()  # collected later: nothing to record any more

    @property
    def memory(self) -> Memory:
        peak, when, holders = self._peak
        return Memory([t for t, _ in self._samples], [b for _, b in self._samples], peak, when, holders)

    def _timed(self, name: str, kernel):

        def call(*args, **kwargs):
            start = time.perf_counter()
            try:
                return kernel(*args, **kwargs)
            finally:
                seconds = time.perf_counter() - start
                arrays = [a for a in (*args, *kwargs.values()) if isinstance(a, np.ndarray)]
                info = {
                    "flops": _kernel_flops(name, args, kwargs),
                    "bytes": float(sum(a.nbytes for a in arrays)),
                    "threads": self.threads,
                }
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
            f"{'GFLOP':>8}{'GFLOP/s':>9}{'MB':>8}{'saved MB':>9}"
        ]
        for (name, phase), (calls, seconds, kernel, flops, moved, saved) in rows:
            rate = f"{flops / kernel / 1e9:9.1f}" if flops and kernel else f"{'':>9}"
            kept = f"{saved / 1e6:>9.2f}" if phase == "forward" else f"{'':>9}"
            lines.append(
                f"{name[:33]:<34}{phase:<9}{calls:>6}{seconds * 1e3:>10.3f}{seconds / calls * 1e3:>9.3f}"
                f"{kernel * 1e3:>10.3f}{(seconds - kernel) * 1e3:>10.3f}{flops / 1e9:>8.3f}{rate}{moved / 1e6:>8.2f}"
                f"{kept}"
            )
        total = sum(r[1] for r in self.rows.values())
        lines.append(f"{'total':<49}{total * 1e3:>10.3f}   (threads: {self.threads})")
        lines.append(self.memory.summary())
        return "\n".join(lines)

    def export_chrome_trace(self, path: str | os.PathLike) -> None:
        """The timeline as Trace Event Format JSON (Perfetto, chrome://tracing): a track for the
        ops as Python sees them, one for the compiled kernels they call (their OpenMP threads
        are not seen from Python: each kernel event says how many ran it), and a counter of the
        tape's memory."""
        import json

        from ..io import write_atomically

        tracks = {"Python (ops)": 1, "C++ kernels": 2, "profiler": 3}
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
        for seconds, live in self._samples:  # a counter track: the tape's live bytes
            events.append(
                {"name": "tape memory", "ph": "C", "pid": 1, "ts": seconds * 1e6, "args": {"MiB": live / 2**20}}
            )
        text = json.dumps({"traceEvents": events, "displayTimeUnit": "ms"})
        write_atomically(os.fspath(path), [text.encode()])


class profile:
    """``with inspect.profile() as prof:`` records every op's forward and backward and the
    compiled kernels they call; ``prof.table()``, ``prof.export_chrome_trace(path)``. Off, it
    costs nothing: the tape's hook is None and the kernels are the plain functions."""

    def __enter__(self) -> Profile:
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
        self.result._close()
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
