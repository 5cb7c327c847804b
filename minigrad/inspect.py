"""Seeing what the engine does on your own model, read from the tape (no second engine).

- :func:`graph` — the recorded graph behind a tensor: per node the op, input and output shapes
  and dtypes, the bytes it saved for backward, and the parameters (by module path) it reaches;
  ``.to_dot()`` gives Graphviz text, ``.save("g.dot" | "g.svg" | "g.png")`` writes it.
- :func:`check_gradients` — the tape's gradients of a model or function against centred finite
  differences in float64, per parameter, with the course notes' thresholds.
"""

from __future__ import annotations

import copy
import dataclasses
import os

import numpy as np

from .autograd import no_grad
from .gradcheck import central_difference
from .tensor import Tensor
from .train.callbacks import Callback


# ------------------------------------------------------------------------------------ graph
@dataclasses.dataclass
class GraphNode:
    """One recorded op. ``inputs`` names what feeds it: another node's index (``int``) or a leaf's
    label (``str``: a parameter's module path, ``"input"``, or ``"constant"``)."""

    index: int
    op: str
    inputs: list
    input_shapes: list
    input_dtypes: list
    output_shape: tuple
    output_dtype: str
    saved_bytes: int
    parameters: list  # module paths of the parameters this node reaches (through any path)


@dataclasses.dataclass
class Graph:
    nodes: list  # GraphNode, outputs first (the order backward visits them)

    def __len__(self) -> int:
        return len(self.nodes)

    def ops(self) -> list[str]:
        return [n.op for n in self.nodes]

    @property
    def saved_bytes(self) -> int:
        """Everything the tape holds for backward."""
        return sum(n.saved_bytes for n in self.nodes)

    def to_dot(self) -> str:
        """Graphviz text: ops as ellipses (shapes in, shape out, bytes saved), leaves as boxes,
        edges in the direction data flows."""
        lines = ["digraph minigrad {", '  rankdir="BT";', '  node [fontname="Helvetica", fontsize=10];']
        leaves = {}
        for n in self.nodes:
            shapes = ", ".join(str(tuple(s)) for s in n.input_shapes)
            label = f"{n.op}\\n{shapes} -> {tuple(n.output_shape)} {n.output_dtype}\\nsaved {_human(n.saved_bytes)}"
            lines.append(f'  n{n.index} [label="{label}"];')
            for source in n.inputs:
                if isinstance(source, int):
                    lines.append(f"  n{source} -> n{n.index};")
                else:
                    leaf = leaves.setdefault(source, f"l{len(leaves)}")
                    lines.append(f"  {leaf} -> n{n.index};")
        for name, leaf in leaves.items():
            lines.append(f'  {leaf} [shape=box, style=filled, fillcolor="#e8f0fe", label="{name}"];')
        lines.append("}")
        return "\n".join(lines) + "\n"

    def save(self, path: str | os.PathLike) -> None:
        """``.dot``: the Graphviz text. ``.svg``/``.png``: rendered by the ``graphviz`` package
        and its ``dot`` program (``pip install "minigrad[viz]"`` and the system's Graphviz)."""
        from .io import write_atomically

        path = os.fspath(path)
        kind = os.path.splitext(path)[1].lower().lstrip(".")
        if kind == "dot":
            write_atomically(path, [self.to_dot().encode()])
            return
        if kind not in ("svg", "png"):
            raise ValueError(f"Graph.save: use a .dot, .svg or .png path, got {path!r}")
        try:
            import graphviz
        except ImportError:
            raise ImportError(
                f"Graph.save({path!r}) needs the graphviz package (pip install 'minigrad[viz]') and the "
                "Graphviz 'dot' program; a .dot path works without them"
            ) from None
        try:
            image = graphviz.Source(self.to_dot()).pipe(format=kind)
        except graphviz.ExecutableNotFound:
            raise RuntimeError(
                f"Graph.save({path!r}): the Graphviz 'dot' program is not installed (apt install graphviz, "
                "brew install graphviz); a .dot path works without it"
            ) from None
        write_atomically(path, [image])


def _human(count: int) -> str:
    for unit in ("B", "KiB", "MiB"):
        if count < 1024 or unit == "MiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return ""


_BOOKKEEPING = {"inputs", "versions", "hooks", "compute", "needs_input_grad", "label"}


def _saved_bytes(node) -> int:
    """The arrays a node keeps for backward (its attributes), each counted once; a leaf's own
    array (a parameter's weights) is not counted: it lives on without the tape."""
    leaves = [t.data for t in node.inputs if t._node is None]
    seen, total = set(), 0
    for name, value in vars(node).items():
        if name in _BOOKKEEPING:
            continue
        for array in value if isinstance(value, (list, tuple)) else (value,):
            array = array.data if isinstance(array, Tensor) else array
            if isinstance(array, np.ndarray) and id(array) not in seen:
                seen.add(id(array))
                if any(np.may_share_memory(array, leaf) for leaf in leaves):
                    continue
                total += array.nbytes
    return total


def graph(tensor: Tensor, model=None) -> Graph:
    """The graph recorded behind ``tensor``. With ``model`` (a Module), parameters are named by
    their module path (``features.0.weight``); other leaves are ``input`` (requires grad) or
    ``constant``. The nodes come outputs first, in the order backward visits them."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"graph: expected a minigrad Tensor, got {type(tensor).__name__}")
    if tensor._node is None:
        raise ValueError("graph: the tensor has no recorded graph (a leaf, or made under no_grad)")
    if tensor._node.inputs is None:
        raise ValueError("graph: the graph was freed by backward; call graph() before backward()")
    names = {id(p): name for name, p in model.named_parameters()} if model is not None else {}
    order, index_of, output_of = [], {}, {id(tensor._node): tensor}
    stack = [tensor._node]
    while stack:  # depth-first, each node once
        node = stack.pop()
        if id(node) in index_of:
            continue
        index_of[id(node)] = len(order)
        order.append(node)
        for t in node.inputs:
            if t._node is not None:
                output_of.setdefault(id(t._node), t)
                stack.append(t._node)
    reaches: dict = {}

    def parameters_of(node) -> set:
        if id(node) not in reaches:
            found = set()
            for t in node.inputs:
                if t._node is not None:
                    found |= parameters_of(t._node)
                elif id(t) in names:
                    found.add(names[id(t)])
            reaches[id(node)] = found
        return reaches[id(node)]

    nodes = []
    for node in order:
        out = output_of[id(node)]
        sources = [
            index_of[id(t._node)]
            if t._node is not None
            else names.get(id(t), "input" if t.requires_grad else "constant")
            for t in node.inputs
        ]
        nodes.append(
            GraphNode(
                index=index_of[id(node)],
                op=getattr(node, "label", type(node).__name__),
                inputs=sources,
                input_shapes=[tuple(t.shape) for t in node.inputs],
                input_dtypes=[str(t.dtype) for t in node.inputs],
                output_shape=tuple(out.shape),
                output_dtype=str(out.dtype),
                saved_bytes=_saved_bytes(node),
                parameters=sorted(parameters_of(node)),
            )
        )
    return Graph(nodes)


# ------------------------------------------------------------------------ gradient checks
@dataclasses.dataclass
class GradientCheck:
    """Per checked tensor: the largest relative error over the sampled entries and where."""

    name: str
    max_relative_error: float
    worst_index: tuple
    analytic: float
    numeric: float
    verdict: str

    def __str__(self) -> str:
        return (
            f"{self.name}: max relative error {self.max_relative_error:.2e} at {self.worst_index} "
            f"(tape {self.analytic:.6g}, finite differences {self.numeric:.6g}): {self.verdict}"
        )


def _verdict(error: float) -> str:
    """The course notes' guide for relative errors in float64."""
    if error < 1e-7:
        return "fine"
    if error < 1e-4:
        return "fine for kinks (ReLU, max) but look again if there are none"
    if error < 1e-2:
        return "suspicious"
    return "probably wrong"


def check_gradients(model_or_fn, inputs, eps: float = 1e-6, samples: int = 20, seed: int = 0) -> list[GradientCheck]:
    """The tape's gradients against centred finite differences (f(x + eps) - f(x - eps)) / 2 eps,
    in float64, on up to ``samples`` random entries of each parameter of a Module (its float64
    copy: the model is left as it was) or of each input that requires grad of a function. The
    objective is sum(output * w) for a fixed random w, so every output entry counts. Returns one
    :class:`GradientCheck` per tensor, worst first; relative error |a - n| / max(|a|, |n|, 1e-12)."""
    from .nn import Module

    inputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    wide = [
        Tensor(np.asarray(getattr(x, "data", x), dtype=np.float64), requires_grad=getattr(x, "requires_grad", False))
        for x in inputs
    ]
    if isinstance(model_or_fn, Module):
        model = copy.deepcopy(model_or_fn).to(np.float64)
        checked = list(model.named_parameters())

        def run():
            return model(*wide)
    else:
        checked = [(f"input {i}", x) for i, x in enumerate(wide) if x.requires_grad]

        def run():
            return model_or_fn(*wide)

    if not checked:
        raise ValueError("check_gradients: nothing requires grad (pass a Module, or inputs with requires_grad=True)")
    out = run()
    weights = Tensor(np.random.default_rng(seed).standard_normal(out.shape))
    for _, t in checked:
        t.grad = None
    (out * weights).sum().backward()

    def objective() -> float:
        with no_grad():
            return float((run().data * weights.data).sum())

    rng = np.random.default_rng(seed)
    results = []
    for name, t in checked:
        analytic = np.zeros(t.shape) if t.grad is None else t.grad.data
        picks = rng.choice(t.data.size, size=min(samples, t.data.size), replace=False)
        worst = (-1.0, 0, 0.0, 0.0)
        for flat_index in picks:
            numeric = central_difference(objective, t.data, int(flat_index), eps)
            a = float(analytic.reshape(-1)[flat_index])
            error = abs(a - numeric) / max(abs(a), abs(numeric), 1e-12)
            if error > worst[0]:
                worst = (error, int(flat_index), a, numeric)
        error, flat_index, a, numeric = worst
        results.append(
            GradientCheck(
                name, error, tuple(int(i) for i in np.unravel_index(flat_index, t.shape)), a, numeric, _verdict(error)
            )
        )
    return sorted(results, key=lambda r: -r.max_relative_error)


# -------------------------------------------------------------------------------- profile
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
        from .threads import get_num_threads

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

        from .io import write_atomically

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

        from . import _C
        from .autograd import Function

        self.result = Profile()
        self.result._origin = time.perf_counter()
        self._previous = Function.profiler
        self._kernels = {name: getattr(_C, name) for name in _KERNELS if hasattr(_C, name)}
        for name, kernel in self._kernels.items():
            setattr(_C, name, self.result._timed(name, kernel))
        Function.profiler = self.result._record
        return self.result

    def __exit__(self, *exc) -> bool:
        from . import _C
        from .autograd import Function

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
