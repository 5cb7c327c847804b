"""The tape: how minigrad records operations and runs them backwards.

Every differentiable operation is a :class:`Function` subclass with a ``forward`` that maps
numpy arrays to a numpy array and a ``backward`` that maps the output gradient to one
gradient per input. ``Function.apply`` runs the forward and, when gradients are wanted, links
the output Tensor to the Function (its *node*) and the node to its inputs. That chain of
nodes is the tape.

``backward`` walks the tape once in reverse topological order. The engine does the chores
so ops stay short: it sums gradients over broadcast axes back to each input's shape, checks
every gradient's shape, accumulates fan-out with ``+=``, tells each node which inputs need a
gradient (``needs_input_grad``), refuses to use arrays that were modified in place after
being recorded (version counters), and frees each node's saved arrays once it has run.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import defaultdict

import numpy as np

from . import amp, dtypes

_state = type("GradState", (threading.local,), {"grad_enabled": True})()  # a class default: unset is a fast read
_at_end: list = []  # callables queue_callback() added during a backward; run once when it ends


def is_grad_enabled() -> bool:
    return _state.grad_enabled


class no_grad(contextlib.ContextDecorator):
    """Context manager and decorator: operations inside record nothing on the tape."""

    def __enter__(self):
        self._previous = is_grad_enabled()
        _state.grad_enabled = False

    def __exit__(self, *exc):
        _state.grad_enabled = self._previous
        return False


class enable_grad(no_grad):
    """Re-enables recording inside a ``no_grad`` block."""

    def __enter__(self):
        self._previous = is_grad_enabled()
        _state.grad_enabled = True


class Function:
    """One differentiable op. Subclasses define ``forward(*arrays, **options)`` returning an
    array and ``backward(grad)`` returning one gradient (or None) per tensor input (skip those
    ``self.needs_input_grad[i]`` says are not wanted). ``is_view = True``: the output shares the
    first input's memory. ``self.label``: the node's profile name (Conv2d adds its algorithm)."""

    is_view = False
    reads = ("inputs", "output")  # what backward reads: only those are version-checked
    profiler = None  # a callable(node, phase, seconds) while `inspect.profile()` is active

    def __init__(self, needs_input_grad):
        self.needs_input_grad = needs_input_grad

    @classmethod
    def apply(cls, *inputs, **options):
        from .tensor import Tensor  # the tensor module builds on this one

        start = time.perf_counter() if Function.profiler else 0.0  # the op's whole cost, engine's part included
        tensors = [x if isinstance(x, Tensor) else Tensor._constant_like(x, inputs) for x in inputs]
        tensors, compute, result = amp.plan(cls, tensors)  # the dtypes it computes in (minigrad/amp.py)
        record = is_grad_enabled() and any(t.requires_grad for t in tensors)
        node = cls(tuple(t.requires_grad for t in tensors))
        try:
            data = node.forward(*amp.operands(cls, tensors, compute), **options)
        except ValueError as error:  # numpy's shape errors do not say which op failed
            if str(error).startswith(cls.__name__):
                raise
            raise ValueError(f"{cls.__name__}: {error} (input shapes {[t.shape for t in tensors]})") from None
        data = data if result is None else dtypes.convert(data, result)
        record = record and dtypes.is_float(data.dtype)  # integer results (casts, indices) carry no gradient
        shares = cls.is_view and np.may_share_memory(data, tensors[0].data)
        out = Tensor(data, requires_grad=record, _version=tensors[0]._version if shares else None)
        if record:  # backward may read the inputs and the output (cls.reads): remember their versions
            read = (list(tensors) if "inputs" in cls.reads else []) + ([out] if "output" in cls.reads else [])
            node.inputs, node.versions = tensors, [(t._version, t._version[0]) for t in read]
            node.hooks, node.compute, node.options = [], compute, options  # options: for exporters (onnx)
            out._node = node
        if Function.profiler:
            Function.profiler(node, "forward", time.perf_counter() - start)
        return out

    def forward(self, *arrays, **options) -> np.ndarray:  # pragma: no cover - the interface
        raise NotImplementedError(f"{type(self).__name__} must define forward")

    def backward(self, grad) -> np.ndarray | tuple[np.ndarray | None, ...]:  # pragma: no cover - the interface
        raise NotImplementedError(f"{type(self).__name__} does not support backward")


def unbroadcast(grad: np.ndarray, shape: tuple) -> np.ndarray:
    """Sums ``grad`` over the axes numpy broadcasting added or stretched to reach its shape.
    A gradient that cannot have come from ``shape`` is returned as is, for the engine to report."""
    if grad.shape == shape or grad.ndim < len(shape):
        return grad
    if grad.ndim > len(shape):  # axes that broadcasting added in front
        grad = np.asarray(grad.sum(axis=tuple(range(grad.ndim - len(shape)))))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    return grad.sum(axis=stretched, keepdims=True) if stretched else grad


def _topological_order(root_node):
    """Nodes reachable from ``root_node``, each after every node that consumes its output.
    Iterative depth-first search, so deep graphs cannot exhaust Python's recursion limit."""
    order, visited, stack = [], set(), [(root_node, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:  # every node it reaches is already in `order`
            order.append(node)
            continue
        if id(node) in visited:  # pushed twice before being expanded: expand once
            continue
        if node.inputs is None:
            raise RuntimeError(_FREED)
        visited.add(id(node))
        stack.append((node, True))
        for t in node.inputs:
            child = t._node
            if child is not None and id(child) not in visited:
                stack.append((child, False))
    order.reverse()
    return order


_FREED = (
    "Trying to backward through the graph a second time (or to use values it freed after "
    "backward). Pass retain_graph=True to the first backward() if you need to do this."
)


def queue_callback(callback) -> None:
    """Runs ``callback()`` once, when the backward in progress ends (DDP waits for its all-reduces)."""
    _at_end.append(callback)


def backward(root, grad=None, retain_graph: bool = False) -> None:
    """Accumulates d(root)/d(leaf) into ``leaf.grad`` for every leaf that requires grad."""
    from .ops.elementwise import add_arrays  # fan-out sums on the add kernel (ops build on this module)

    if not root.requires_grad:
        raise RuntimeError("backward(): the tensor does not require grad and has no graph")
    if grad is None:
        if root.data.size != 1:
            raise RuntimeError(
                f"backward() on a tensor of shape {root.shape} needs a gradient: "
                "pass t.backward(grad) with grad of that shape, or reduce to a scalar first"
            )
        grad = np.ones_like(root.data)
    grad = np.asarray(dtypes.array_of(grad), dtype=root.dtype)
    if grad.shape != root.shape:
        raise ValueError(f"backward(): gradient shape {grad.shape} does not match tensor shape {root.shape}")
    if root._node is None:  # a leaf: nothing to walk
        root._accumulate(grad)
        return
    grads = defaultdict(lambda: None, {id(root._node): grad})
    for node in _topological_order(root._node):
        start = time.perf_counter() if Function.profiler else 0.0  # hooks, checks and accumulation included
        g = grads.pop(id(node), None)
        if g is None:  # no consumer sent it a gradient: nothing to pass on, only memory to free
            _free(node, retain_graph)
            continue
        for hook in node.hooks:
            g = _run_hook(hook, g)
        _check_versions(node)
        input_grads = node.backward(g if node.compute is None else dtypes.convert(g, node.compute))
        input_grads = input_grads if isinstance(input_grads, tuple) else (input_grads,)
        for t, needed, ig in zip(node.inputs, node.needs_input_grad, input_grads):
            if not needed or ig is None:
                continue
            ig = dtypes.convert(unbroadcast(np.asarray(ig), t.shape), t.dtype)  # sum, then round
            if ig.shape != t.shape:
                raise RuntimeError(
                    f"{type(node).__name__}.backward returned a gradient of shape "
                    f"{ig.shape} for an input of shape {t.shape}"
                )
            if t._node is None:
                t._accumulate(ig)
            else:
                key = id(t._node)
                grads[key] = ig if grads[key] is None else add_arrays(grads[key], ig)
        if Function.profiler:
            Function.profiler(node, "backward", time.perf_counter() - start)
        _free(node, retain_graph)
    while _at_end:  # callbacks queued by the hooks of this backward
        _at_end.pop(0)()


def _free(node, retain_graph: bool) -> None:
    """Drops the node's saved arrays and inputs: the tape holds nothing after backward."""
    if not retain_graph:
        node.__dict__.clear()
        node.inputs = None


def _check_versions(node) -> None:
    for i, (version, seen) in enumerate(node.versions):
        if version[0] != seen:
            what = f"input {i}" if "inputs" in node.reads and i < len(node.inputs) else "the output"
            raise RuntimeError(
                f"{what} of {type(node).__name__} was modified in place after it was recorded "
                f"(version {seen} -> {version[0]}), so its backward would be wrong; clone it before "
                "modifying it, or modify it outside the recorded computation"
            )


def _run_hook(hook, g):
    from .tensor import Tensor

    out = hook(Tensor(g))
    out = g if out is None else np.asarray(dtypes.array_of(out))  # checked like any gradient, never cast:
    if out.shape != g.shape or out.dtype != g.dtype:  # a hook that changes either one is a bug
        raise RuntimeError(f"gradient hook {hook!r} gave {out.dtype} {out.shape} for a {g.dtype} {g.shape} gradient")
    return out


__all__ = ["Function", "backward", "no_grad", "enable_grad", "is_grad_enabled", "queue_callback", "unbroadcast"]
