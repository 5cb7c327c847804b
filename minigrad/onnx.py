"""ONNX export: a trained model as a file that onnxruntime and other engines run.

``export(model, example_input, "model.onnx")`` runs one forward pass of ``model`` in evaluation
mode on the tape, then writes one ONNX node (or a few) for every recorded op, in the order they
ran; parameters and buffers become initializers named by their module path. The file is checked
with ``onnx.checker`` before it is written (atomically). Needs the ``onnx`` package
(``pip install "minigrad[onnx]"``); onnxruntime runs the result.

An op with no ONNX mapping stops the export with its name and the module that recorded it:
the file is never a silently different model.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .dtypes import array_of
from .tensor import Tensor

OPSET = 17


class UnsupportedOperation(ValueError):
    """The model records an op that has no ONNX equivalent here."""


def _onnx():
    try:
        import onnx
    except ImportError:
        raise ImportError("minigrad.onnx needs the onnx package: pip install 'minigrad[onnx]'") from None
    return onnx


def _pair(value) -> list:
    return [int(v) for v in value] if isinstance(value, (tuple, list)) else [int(value)] * 2


class _Builder:
    """The ONNX graph under construction: nodes, initializers, and the name of each tensor."""

    def __init__(self, onnx, opset: int, dynamic_batch: bool):
        self.onnx, self.opset, self.dynamic_batch = onnx, opset, dynamic_batch
        self.nodes, self.initializers, self.names = [], [], {}
        self._count = 0

    def fresh(self, stem: str) -> str:
        self._count += 1
        return f"{stem}_{self._count}"

    def constant(self, array, stem: str = "const") -> str:
        from onnx import numpy_helper

        name = self.fresh(stem)
        self.initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def add(self, op_type: str, inputs: list, output: str | None = None, **attributes) -> str:
        output = output or self.fresh(op_type.lower())
        self.nodes.append(self.onnx.helper.make_node(op_type, inputs, [output], **attributes))
        return output


# ------------------------------------------------------------------------- op mappings
# Each takes (builder, node, input names, output name, output tensor) and emits ONNX nodes
# that compute the op's output under ``output``.
def _unary(op_type):
    return lambda b, node, xs, out, y: b.add(op_type, xs[:1], out)


def _binary(op_type):
    return lambda b, node, xs, out, y: b.add(op_type, xs[:2], out)


def _conv(b, node, xs, out, y):
    o = node.options
    w = node.inputs[1]
    pads = _pair(o.get("padding", 0))
    return b.add(
        "Conv",
        xs,
        out,
        kernel_shape=list(w.shape[2:]),
        strides=_pair(o.get("stride", 1)),
        pads=pads + pads,
        dilations=_pair(o.get("dilation", 1)),
        group=int(o.get("groups", 1)),
    )


def _linear(b, node, xs, out, y):
    if node.inputs[0].ndim == 2:  # y = x W^T + b
        return b.add("Gemm", xs, out, transB=1)
    transposed = b.add("Transpose", [xs[1]], perm=[1, 0])
    if len(xs) == 2:
        return b.add("MatMul", [xs[0], transposed], out)
    return b.add("Add", [b.add("MatMul", [xs[0], transposed]), xs[2]], out)


def _pool(op_type):
    def emit(b, node, xs, out, y):
        kernel, stride, padding = (node.options[k] for k in ("kernel_size", "stride", "padding"))
        pads = _pair(padding)
        extra = {"count_include_pad": 1} if op_type == "AveragePool" else {}
        return b.add(op_type, xs[:1], out, kernel_shape=_pair(kernel), strides=_pair(stride), pads=pads + pads, **extra)

    return emit


def _adaptive_avg_pool(b, node, xs, out, y):
    (h, w), (oh, ow) = node.inputs[0].shape[2:], y.shape[2:]
    if (oh, ow) == (1, 1):
        return b.add("GlobalAveragePool", xs[:1], out)
    if h % oh or w % ow:
        raise UnsupportedOperation(
            f"AdaptiveAvgPool2d from {h}x{w} to {oh}x{ow}: windows of unequal size have no ONNX pooling equivalent"
        )
    kernel = [h // oh, w // ow]
    return b.add("AveragePool", xs[:1], out, kernel_shape=kernel, strides=kernel)


def _batch_norm(b, node, xs, out, y):
    o = node.options
    if o["training"] or o["running_mean"] is None:
        raise UnsupportedOperation("BatchNorm with batch statistics (no running statistics) cannot run as inference")
    channels = node.inputs[0].shape[1]
    dtype = node.inputs[0].data.dtype
    residual = xs[-1] if o.get("has_residual") else None  # relu(bn(x) + residual): a ResNet join
    affine = xs[1 : len(xs) - (residual is not None)]
    scale = affine[0] if o["has_weight"] else b.constant(np.ones(channels, dtype), "bn_scale")
    shift = affine[-1] if o["has_bias"] else b.constant(np.zeros(channels, dtype), "bn_shift")
    mean = b.constant(o["running_mean"].copy(), "running_mean")
    var = b.constant(o["running_var"].copy(), "running_var")
    last = not o["relu"] and residual is None
    y = b.add("BatchNormalization", [xs[0], scale, shift, mean, var], out if last else None, epsilon=o["eps"])
    if residual is not None:
        y = b.add("Add", [y, residual], None if o["relu"] else out)
    return b.add("Relu", [y], out) if o["relu"] else y


def _normalize(b, node, xs, out, y):
    """Layer, group and instance norm normalise over trailing axes: LayerNormalization there."""
    x = node.inputs[0]
    axes = sorted(a % x.ndim for a in np.atleast_1d(node.options["axes"]))
    if axes != list(range(axes[0], x.ndim)):
        raise UnsupportedOperation(f"Normalize over axes {axes} of a {x.ndim}-D input: only trailing axes map to ONNX")
    shape = x.shape[axes[0] :]
    ones, zeros = (
        b.constant(np.ones(shape, x.data.dtype), "ln_scale"),
        b.constant(np.zeros(shape, x.data.dtype), "ln_bias"),
    )
    return b.add("LayerNormalization", [xs[0], ones, zeros], out, axis=axes[0], epsilon=float(node.options["eps"]))


def _reshape(b, node, xs, out, y):
    target = list(y.shape)
    if b.dynamic_batch and y.ndim and node.inputs[0].ndim and y.shape[0] == node.inputs[0].shape[0]:
        target[0] = 0  # ONNX: keep the input's (batch) dimension
    return b.add("Reshape", [xs[0], b.constant(np.array(target, np.int64), "shape")], out)


def _reduce(op_type):
    def emit(b, node, xs, out, y):
        keep = int(bool(node.options.get("keepdims", False)))
        axes = [int(a) for a in node.axes]  # normalised by the op's forward (all axes for axis=None)
        if op_type == "ReduceSum" or b.opset >= 18:
            return b.add(op_type, [xs[0], b.constant(np.array(axes, np.int64), "axes")], out, keepdims=keep)
        return b.add(op_type, xs[:1], out, axes=axes, keepdims=keep)

    return emit


def _softmax(op_type):
    return lambda b, node, xs, out, y: b.add(op_type, xs[:1], out, axis=int(node.options.get("axis", -1)))


MAPPINGS = {
    "Conv2d": _conv,
    "Linear": _linear,
    "MatMul": _binary("MatMul"),
    "Add": _binary("Add"),
    "Sub": _binary("Sub"),
    "Mul": _binary("Mul"),
    "Div": _binary("Div"),
    "Pow": _binary("Pow"),
    "Neg": _unary("Neg"),
    "Abs": _unary("Abs"),
    "Exp": _unary("Exp"),
    "Log": _unary("Log"),
    "Sqrt": _unary("Sqrt"),
    "ReLU": _unary("Relu"),
    "Sigmoid": _unary("Sigmoid"),
    "Tanh": _unary("Tanh"),
    "LeakyReLU": lambda b, node, xs, out, y: b.add(
        "LeakyRelu", xs[:1], out, alpha=float(node.options.get("negative_slope", 0.01))
    ),
    "MaxPool2d": _pool("MaxPool"),
    "AvgPool2d": _pool("AveragePool"),
    "AdaptiveAvgPool2d": _adaptive_avg_pool,
    "BatchNorm": _batch_norm,
    "Normalize": _normalize,
    "Reshape": _reshape,
    "Permute": lambda b, node, xs, out, y: b.add("Transpose", xs[:1], out, perm=[int(a) for a in node.options["axes"]]),
    "Concat": lambda b, node, xs, out, y: b.add("Concat", xs, out, axis=int(node.options.get("axis", 0))),
    "Sum": _reduce("ReduceSum"),
    "Mean": _reduce("ReduceMean"),
    "Softmax": _softmax("Softmax"),
    "LogSoftmax": _softmax("LogSoftmax"),
}


def export(
    model,
    example_input,
    path: str | os.PathLike,
    opset: int = OPSET,
    dynamic_batch: bool = True,
    input_names: tuple = ("input",),
    output_names: tuple = ("output",),
) -> Path:
    """Writes ``model`` as an ONNX file at ``path`` (opset ``opset``), traced on
    ``example_input`` (an array or Tensor of one batch) in evaluation mode. With
    ``dynamic_batch`` the first dimension of the input and output is free (any batch size).
    Returns the path. Raises :class:`UnsupportedOperation` naming the op and its module when a
    recorded op has no mapping; ``onnx.checker`` validates the model before it is written."""
    from .autograd import _topological_order, enable_grad
    from .inspect.graphs import run_recording_modules
    from .io import write_atomically

    onnx = _onnx()
    if not 13 <= int(opset) <= 21:
        raise ValueError(f"onnx.export: opset must be between 13 and 21, got {opset}")
    x = Tensor(np.array(array_of(example_input)), requires_grad=True)  # records every op
    if not (len(input_names) == 1 and len(output_names) == 1):
        raise ValueError("onnx.export: models with one input and one output are supported; give one name each")
    was_training = model.training
    model.eval()
    made_by: dict = {}
    try:
        with enable_grad():
            y = run_recording_modules(model, (x,), made_by)
    finally:
        model.train(was_training)
    if not isinstance(y, Tensor) or y._node is None:
        raise ValueError("onnx.export: the model's output must be a Tensor computed from its input")
    kinds = {path: type(m).__name__ for path, m in model.named_modules()}
    names = {id(p): name for name, p in [*model.named_parameters(), *model.named_buffers()] if p is not None}
    b = _Builder(onnx, int(opset), bool(dynamic_batch))
    dtype = onnx.helper.np_dtype_to_tensor_dtype(x.data.dtype)
    order = list(reversed(_topological_order(y._node)))  # producers first
    produced = {
        id(node): f"{getattr(node, 'label', type(node).__name__).split('[')[0]}_{i}" for i, node in enumerate(order)
    }
    produced[id(y._node)] = output_names[0]
    outputs_of = {id(y._node): y}
    for node in order:
        for t in node.inputs:
            if t._node is not None:
                outputs_of.setdefault(id(t._node), t)
    leaves: dict = {}
    for node in order:
        op = type(node).__name__
        if op not in MAPPINGS:
            where = made_by.get(id(node))
            module = f" in module {where!r} ({kinds.get(where, '?')})" if where else " (in the model's own forward)"
            raise UnsupportedOperation(f"onnx.export: op {op}{module} has no ONNX mapping")
        inputs = []
        for t in node.inputs:
            if t._node is not None:
                inputs.append(produced[id(t._node)])
            elif t is x:
                inputs.append(input_names[0])
            else:
                if id(t) not in leaves:
                    leaves[id(t)] = b.constant(np.array(t.data), names.get(id(t), "const").replace(".", "_"))
                inputs.append(leaves[id(t)])
        MAPPINGS[op](b, node, inputs, produced[id(node)], outputs_of[id(node)])
    batch = "batch" if dynamic_batch else x.shape[0]
    graph = onnx.helper.make_graph(
        b.nodes,
        "minigrad",
        [onnx.helper.make_tensor_value_info(input_names[0], dtype, [batch, *x.shape[1:]])],
        [onnx.helper.make_tensor_value_info(output_names[0], dtype, [batch, *y.shape[1:]])],
        b.initializers,
    )
    proto = onnx.helper.make_model(
        graph, opset_imports=[onnx.helper.make_opsetid("", int(opset))], producer_name="minigrad"
    )
    proto.ir_version = min(proto.ir_version, 10)  # readable by current onnxruntime releases
    onnx.checker.check_model(proto, full_check=True)
    path = Path(path)
    write_atomically(path, [proto.SerializeToString()])
    return path


__all__ = ["MAPPINGS", "OPSET", "UnsupportedOperation", "export"]
