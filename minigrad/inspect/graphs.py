"""The recorded graph behind a tensor, as data, Graphviz text or a picture."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np

from ..tensor import Tensor


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
    module: str | None = None  # the module whose forward recorded it ("" the model's own), when known


@dataclasses.dataclass
class Graph:
    nodes: list  # GraphNode, outputs first (the order backward visits them)
    module_kinds: dict = dataclasses.field(default_factory=dict)  # module path -> class name
    collapsed: bool = False  # one node per module (collapse()), rather than one per op
    kept_bytes: int | None = None  # the tape's buffers, each counted once

    def __len__(self) -> int:
        return len(self.nodes)

    def ops(self) -> list[str]:
        return [n.op for n in self.nodes]

    @property
    def saved_bytes(self) -> int:
        """Everything the tape holds for backward, each buffer once (nodes that share an array,
        such as an op's output and its consumer's input, each count it in their own figure)."""
        return self.kept_bytes if self.kept_bytes is not None else sum(n.saved_bytes for n in self.nodes)

    def collapse(self, depth: int = 1) -> Graph:
        """One node per module, ``depth`` levels below the model (1: its children, such as
        ``layer1``; 2: their children, such as ``layer1.0``): each stands for every op its
        forward recorded, with their saved bytes summed, the shapes crossing its boundary, and
        its own parameters folded in. Ops the model ran itself stay as they are. Needs the
        module of each node: build the graph with ``graph(model, *inputs)``."""
        if int(depth) != depth or depth < 1:
            raise ValueError(f"Graph.collapse: depth must be a positive whole number, got {depth!r}")
        if all(n.module is None for n in self.nodes):
            raise ValueError("Graph.collapse needs each node's module: build the graph with graph(model, *inputs)")
        group_of = {n.index: ".".join(n.module.split(".")[:depth]) if n.module else None for n in self.nodes}
        merged: dict = {}  # group (or the node's own index) -> its nodes, outputs first
        for n in self.nodes:
            merged.setdefault(group_of[n.index] or n.index, []).append(n)
        new_index = {key: i for i, key in enumerate(merged)}

        def key_of(index: int):
            return group_of[index] or index

        nodes = []
        for key, members in merged.items():
            inside = {m.index for m in members}
            own = f"{key}." if isinstance(key, str) else None
            inputs, shapes, dtypes = [], [], []
            for m in reversed(members):  # producers first, so inputs come in the order they are used
                for source, shape, dtype in zip(m.inputs, m.input_shapes, m.input_dtypes):
                    if isinstance(source, int):
                        if source in inside:
                            continue
                        source = new_index[key_of(source)]
                    elif own and source.startswith(own):  # the module's own parameter: folded in
                        continue
                    if source not in inputs:
                        inputs.append(source)
                        shapes.append(shape)
                        dtypes.append(dtype)
            last = members[0]  # outputs first: the op that produced the module's output
            kind = self.module_kinds.get(key, "") if isinstance(key, str) else ""
            nodes.append(
                GraphNode(
                    index=new_index[key],
                    op=f"{key} ({kind})" if isinstance(key, str) else last.op,
                    inputs=inputs,
                    input_shapes=shapes,
                    input_dtypes=dtypes,
                    output_shape=last.output_shape,
                    output_dtype=last.output_dtype,
                    saved_bytes=sum(m.saved_bytes for m in members),
                    parameters=sorted(set().union(*(m.parameters for m in members))),
                    module=key if isinstance(key, str) else last.module,
                )
            )
        return Graph(nodes, self.module_kinds, collapsed=True, kept_bytes=self.saved_bytes)

    def to_dot(self) -> str:
        """Graphviz text: ops as ellipses (shapes in, shape out, bytes saved), leaves as boxes,
        edges in the direction data flows. Where the module of each op is known, an op of a
        layer is labelled with the layer's path, and the ops of each block or container sit in
        nested boxes named after it (the expanded view of :meth:`collapse`)."""
        lines = [
            "digraph minigrad {",
            '  rankdir="BT";',
            '  graph [fontname="Helvetica", fontsize=10];',
            '  node [fontname="Helvetica", fontsize=10];',
        ]
        leaves, members = {}, {}
        containers = {path.rpartition(".")[0] for path in self.module_kinds} - {""}  # modules with children
        for n in self.nodes:
            shapes = ", ".join(str(tuple(s)) for s in n.input_shapes)
            where = f" {n.module}" if n.module and not self.collapsed and n.module not in containers else ""
            label = (
                f"{n.op}{where}\\n{shapes} -> {tuple(n.output_shape)} {n.output_dtype}\\nsaved {_human(n.saved_bytes)}"
            )
            shape = ", shape=box, style=rounded" if self.collapsed and n.module else ""  # a whole module
            box = None if self.collapsed else _innermost(n.module, containers)
            members.setdefault(box, []).append(f'n{n.index} [label="{label}"{shape}];')
            for source in n.inputs:
                if isinstance(source, int):
                    lines.append(f"  n{source} -> n{n.index};")
                else:
                    leaf = leaves.setdefault(source, f"l{len(leaves)}")
                    lines.append(f"  {leaf} -> n{n.index};")

        def emit(box, indent: str) -> None:  # a container's ops, then the containers inside it
            lines.extend(indent + m for m in members.get(box, []))
            for inner in sorted(p for p in members if p and _parent(p, containers) == box):
                lines.append(f"{indent}subgraph cluster_{inner.replace('.', '_')} {{")
                lines.append(f'{indent}  label="{inner} ({self.module_kinds[inner]})"; style=rounded; color="#9aa0a6";')
                emit(inner, indent + "  ")
                lines.append(f"{indent}}}")

        for box in list(members):  # containers with no ops of their own still nest the ones below
            while box and _parent(box, containers) not in members:
                box = _parent(box, containers)
                members.setdefault(box, [])
        emit(None, "  ")
        for name, leaf in leaves.items():
            lines.append(f'  {leaf} [shape=box, style=filled, fillcolor="#e8f0fe", label="{name}"];')
        lines.append("}")
        return "\n".join(lines) + "\n"

    def save(self, path: str | os.PathLike) -> None:
        """``.dot``: the Graphviz text. ``.svg``/``.png``: rendered by the ``graphviz`` package
        and its ``dot`` program (``pip install "minigrad[viz]"`` and the system's Graphviz)."""
        from ..io import write_atomically

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


def _innermost(module: str | None, containers: set) -> str | None:
    """The innermost container (a module with sub-modules) holding ``module``, itself included."""
    while module:
        if module in containers:
            return module
        module = module.rpartition(".")[0]
    return None


def _parent(container: str, containers: set) -> str | None:
    return _innermost(container.rpartition(".")[0], containers)


def _human(count: int) -> str:
    for unit in ("B", "KiB", "MiB"):
        if count < 1024 or unit == "MiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return ""


_BOOKKEEPING = {"inputs", "versions", "hooks", "compute", "needs_input_grad", "label", "options"}


def saved_arrays(node) -> list:
    """The buffers a node keeps alive for backward, each once: what its forward saved (its
    attributes) and the outputs of other ops it takes as inputs (the tape links to them); a view
    stands for the buffer it keeps. A leaf's own array (an input batch, a parameter's weights)
    is left out: it lives on without the tape."""
    leaves = [t.data for t in node.inputs if t._node is None]
    linked = [t.data for t in node.inputs if t._node is not None]
    seen, kept = set(), []
    for name, value in [("linked inputs", linked), *vars(node).items()]:
        if name in _BOOKKEEPING:
            continue
        for array in value if isinstance(value, (list, tuple)) else (value,):
            array = array.data if isinstance(array, Tensor) else array
            while isinstance(array, np.ndarray) and isinstance(array.base, np.ndarray):
                array = array.base  # a view keeps its whole buffer alive: count the buffer, once
            if isinstance(array, np.ndarray) and id(array) not in seen:
                seen.add(id(array))
                if not any(np.may_share_memory(array, leaf) for leaf in leaves):
                    kept.append(array)
    return kept


def graph(target, *args) -> Graph:
    """The graph recorded behind a tensor: ``graph(tensor)`` or ``graph(tensor, model)``, where
    the Module names parameters by their path (``features.0.weight``); other leaves are
    ``input`` (requires grad) or ``constant``. ``graph(model, *inputs)`` runs the model on the
    inputs itself and also records which module made each node (``GraphNode.module``), so the
    picture boxes ops by layer and :meth:`Graph.collapse` can fold them. The nodes come outputs
    first, in the order backward visits them."""
    from ..nn import Module

    made_by = {}
    if isinstance(target, Module):
        model, output = target, run_recording_modules(target, args, made_by)
    else:
        if len(args) > 1 or (args and not isinstance(args[0], Module)):
            raise TypeError("graph: call graph(tensor), graph(tensor, model) or graph(model, *inputs)")
        output, model = target, args[0] if args else None
    if not isinstance(output, Tensor):
        raise TypeError(f"graph: expected a minigrad Tensor, got {type(output).__name__}")
    if output._node is None:
        raise ValueError("graph: the tensor has no recorded graph (a leaf, or made under no_grad)")
    if output._node.inputs is None:
        raise ValueError("graph: the graph was freed by backward; call graph() before backward()")
    from ..autograd import _topological_order

    names = {id(p): name for name, p in model.named_parameters()} if model is not None else {}
    kinds = {path: type(m).__name__ for path, m in model.named_modules()} if model is not None else {}
    order = _topological_order(output._node)  # consumers before producers, as backward runs
    index_of = {id(node): i for i, node in enumerate(order)}
    output_of = {id(output._node): output}
    reaches: dict = {}
    for node in reversed(order):  # producers first: what each node reaches, without recursion
        found = set()
        for t in node.inputs:
            if t._node is not None:
                output_of.setdefault(id(t._node), t)
                found |= reaches[id(t._node)]
            elif id(t) in names:
                found.add(names[id(t)])
        reaches[id(node)] = found
    nodes, buffers = [], {}
    for i, node in enumerate(order):
        out = output_of[id(node)]
        kept = saved_arrays(node)
        buffers.update((id(array), array.nbytes) for array in kept)
        sources = [
            index_of[id(t._node)]
            if t._node is not None
            else names.get(id(t), "input" if t.requires_grad else "constant")
            for t in node.inputs
        ]
        nodes.append(
            GraphNode(
                index=i,
                op=getattr(node, "label", type(node).__name__),
                inputs=sources,
                input_shapes=[tuple(t.shape) for t in node.inputs],
                input_dtypes=[str(t.dtype) for t in node.inputs],
                output_shape=tuple(out.shape),
                output_dtype=str(out.dtype),
                saved_bytes=sum(array.nbytes for array in kept),
                parameters=sorted(reaches[id(node)]),
                module=made_by.get(id(node)),
            )
        )
    return Graph(nodes, kinds, kept_bytes=sum(buffers.values()))


def run_recording_modules(model, inputs, made_by: dict) -> Any:
    """Runs ``model(*inputs)`` with forward hooks on every module: when a module returns, the
    nodes its forward recorded that no inner module claimed are its own. A module's recorded
    nodes are those between its output and its inputs on the tape."""
    entered = {}  # module -> ids of the nodes behind its tensor arguments, per active call

    def before(module, args):
        entered.setdefault(module, []).append({id(a._node) for a in args if isinstance(a, Tensor) and a._node})

    def after(module, args, output):
        stops = entered[module].pop()
        path = paths[module]
        stack = [t._node for t in (output if isinstance(output, (tuple, list)) else (output,)) if isinstance(t, Tensor)]
        seen = set()
        while stack:  # through the inner modules' nodes too: unclaimed ones may lie beneath them
            node = stack.pop()
            if node is None or id(node) in stops or id(node) in seen or getattr(node, "inputs", None) is None:
                continue
            seen.add(id(node))
            made_by.setdefault(id(node), path)  # inner modules returned first: what is left is this one's
            stack.extend(t._node for t in node.inputs)

    paths = {m: path for path, m in model.named_modules()}
    handles = [m.register_forward_pre_hook(before) for m in paths]
    handles += [m.register_forward_hook(after) for m in paths]
    try:
        return model(*inputs)
    finally:
        for handle in handles:
            handle.remove()
