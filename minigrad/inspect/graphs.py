"""The recorded graph behind a tensor, as data, Graphviz text or a picture."""

from __future__ import annotations

import dataclasses
import os

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


def _human(count: int) -> str:
    for unit in ("B", "KiB", "MiB"):
        if count < 1024 or unit == "MiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return ""


_BOOKKEEPING = {"inputs", "versions", "hooks", "compute", "needs_input_grad", "label"}


def saved_arrays(node) -> list:
    """The arrays a node keeps alive for backward, each once: what its forward saved (its
    attributes) and the outputs of other ops it takes as inputs (the tape links to them). A
    leaf's own array (an input batch, a parameter's weights) is left out: it lives on without
    the tape."""
    leaves = [t.data for t in node.inputs if t._node is None]
    linked = [t.data for t in node.inputs if t._node is not None]
    seen, kept = set(), []
    for name, value in [("linked inputs", linked), *vars(node).items()]:
        if name in _BOOKKEEPING:
            continue
        for array in value if isinstance(value, (list, tuple)) else (value,):
            array = array.data if isinstance(array, Tensor) else array
            if isinstance(array, np.ndarray) and id(array) not in seen:
                seen.add(id(array))
                if not any(np.may_share_memory(array, leaf) for leaf in leaves):
                    kept.append(array)
    return kept


def _saved_bytes(node) -> int:
    return sum(array.nbytes for array in saved_arrays(node))


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
