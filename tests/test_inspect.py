"""minigrad.inspect: the recorded graph (node counts, shapes, saved bytes, parameter paths,
Graphviz output) and gradient checks of a learner's own model or Function."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import minigrad as mg
from minigrad import inspect, nn
from minigrad.autograd import Function


def test_graph_of_a_known_expression():
    x = mg.randn(3, 4, requires_grad=True)
    w = mg.randn(4, 2, requires_grad=True)
    loss = ((x @ w).relu() * 2).sum()
    g = inspect.graph(loss)
    assert g.ops() == ["Sum", "Mul", "ReLU", "MatMul"]
    matmul = g.nodes[3]
    assert matmul.input_shapes == [(3, 4), (4, 2)] and matmul.output_shape == (3, 2)
    assert matmul.inputs == ["input", "input"] and g.nodes[1].inputs == [2, "constant"]
    assert g.nodes[2].output_dtype == "float32"
    # ReLU keeps its (3, 2) float32 output and links to its input, MatMul's output; MatMul keeps
    # only its leaves' arrays, which live on without the tape and are not counted
    assert g.nodes[2].saved_bytes == 2 * 3 * 2 * 4 and matmul.saved_bytes == 0


def test_graph_of_lenet5_names_parameters_by_module_path():
    model = mg.models.lenet5()
    g = inspect.graph(model(mg.randn(2, 1, 28, 28)), model)
    assert g.ops().count("Conv2d") == 2 and g.ops().count("Linear") == 3 and len(g) == 12
    first_conv = g.nodes[-1]
    assert first_conv.op == "Conv2d" and first_conv.inputs == ["constant", "0.weight", "0.bias"]
    assert first_conv.output_shape == (2, 6, 28, 28)
    assert g.nodes[0].parameters == sorted(name for name, _ in model.named_parameters())
    assert g.saved_bytes > 0
    # run by graph() itself: one box per layer of the Sequential, in order
    layers = inspect.graph(model, mg.randn(2, 1, 28, 28)).collapse()
    assert layers.ops() == [f"{i} ({type(m).__name__})" for i, m in reversed(list(enumerate(model)))]


def test_graph_of_resnet8_and_its_dot_text(tmp_path):
    model = mg.models.resnet8()
    out = model(mg.randn(2, 3, 16, 16))
    g = inspect.graph(out, model)
    assert g.ops().count("Conv2d") == sum(1 for _, m in model.named_modules() if isinstance(m, nn.Conv2d))
    dot = g.to_dot()
    assert dot.startswith("digraph minigrad {") and dot.count(" -> ") >= len(g) and "conv1.weight" in dot
    g.save(tmp_path / "g.dot")
    assert (tmp_path / "g.dot").read_text() == dot


def test_rendering_needs_graphviz_and_says_so(tmp_path, monkeypatch):
    g = inspect.graph((mg.randn(2, requires_grad=True) * 3).sum())
    with pytest.raises(ValueError, match="use a .dot, .svg or .png path"):
        g.save(tmp_path / "g.pdf")
    import sys

    monkeypatch.setitem(sys.modules, "graphviz", None)  # as if not installed
    with pytest.raises(ImportError, match=r"pip install 'minigrad\[viz\]'"):
        g.save(tmp_path / "g.svg")


@pytest.mark.skipif(shutil.which("dot") is None, reason="needs the Graphviz dot program")
def test_svg_and_png_render(tmp_path):
    pytest.importorskip("graphviz")
    model = mg.models.lenet5()
    g = inspect.graph(model(mg.randn(1, 1, 28, 28)), model)
    g.save(tmp_path / "g.svg")
    g.save(tmp_path / "g.png")
    assert (tmp_path / "g.svg").read_text().lstrip().startswith(("<?xml", "<svg"))
    assert (tmp_path / "g.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_graph_refuses_leaves_and_freed_graphs():
    with pytest.raises(TypeError, match="expected a minigrad Tensor, got ndarray"):
        inspect.graph(np.zeros(3))
    x = mg.randn(2, requires_grad=True)
    with pytest.raises(ValueError, match="no recorded graph"):
        inspect.graph(x)
    y = (x * 2).sum()
    y.backward()
    with pytest.raises(ValueError, match="freed by backward"):
        inspect.graph(y)


def test_check_gradients_passes_a_correct_model_and_leaves_it_unchanged():
    model = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2))
    before = model[0].weight.numpy().copy()
    results = inspect.check_gradients(model, mg.randn(5, 4))
    assert {r.name for r in results} == {"0.weight", "0.bias", "2.weight", "2.bias"}
    assert all(r.max_relative_error < 1e-7 and r.verdict == "fine" for r in results), results
    assert model[0].weight.dtype == np.float32 and np.array_equal(model[0].weight.numpy(), before)


class WrongSquare(Function):
    """z = x^2 with a deliberately wrong backward (x instead of 2x)."""

    def forward(self, x):
        self.x = x
        return x * x

    def backward(self, g):
        return g * self.x


def test_check_gradients_catches_a_wrong_custom_backward():
    x = mg.tensor(np.random.default_rng(0).uniform(0.5, 2.0, 6), requires_grad=True)
    (wrong,) = inspect.check_gradients(lambda t: WrongSquare.apply(t), [x])
    assert wrong.name == "input 0" and wrong.verdict == "probably wrong" and wrong.max_relative_error > 0.3
    assert "probably wrong" in str(wrong)
    (right,) = inspect.check_gradients(lambda t: t * t, [x])
    assert right.verdict == "fine"


def test_check_gradients_needs_something_to_check():
    with pytest.raises(ValueError, match="nothing requires grad"):
        inspect.check_gradients(lambda t: t * 2, [mg.randn(3)])


def lenet_step(batch=8):
    from minigrad.nn import functional as F

    mg.manual_seed(0)
    model = mg.models.lenet5()
    optimizer = mg.optim.SGD(model.parameters(), lr=0.01)
    x, y = mg.randn(batch, 1, 28, 28), mg.tensor([i % 10 for i in range(batch)])

    def step():
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()

    return step


def test_profile_counts_ops_kernels_and_flops_of_a_lenet_step(tmp_path):
    import json
    import time

    from minigrad import _C
    from minigrad.autograd import Function

    step = lenet_step()
    step()  # warm
    plain_gemm = _C.gemm
    with inspect.profile() as prof:
        start = time.perf_counter()
        step()
        wall = time.perf_counter() - start
    assert Function.profiler is None and _C.gemm is plain_gemm  # off again: nothing left behind
    rows = prof.rows
    conv_forward = [r for (name, phase), r in rows.items() if name.startswith("Conv2d") and phase == "forward"]
    assert sum(r[0] for r in conv_forward) == 2
    # 2 FLOPs per multiply-add: conv1 6x28x28 outputs of 1x5x5, conv2 16x10x10 outputs of 6x5x5, batch 8
    assert sum(r[3] for r in conv_forward) == 2 * 8 * (6 * 28 * 28 * 25 + 16 * 10 * 10 * 150)
    assert rows[("Linear", "forward")][0] == 3 and rows[("ReLU", "backward")][0] == 4
    for calls, seconds, kernel, *_ in rows.values():
        assert 0 <= kernel <= seconds and calls >= 1
    table = prof.table(sort_by="kernel")
    assert table.splitlines()[0].split()[:4] == ["op", "phase", "calls", "total"] and "threads" in table
    with pytest.raises(ValueError, match="sort_by must be one of"):
        prof.table(sort_by="speed")
    prof.export_chrome_trace(tmp_path / "trace.json")
    trace = json.loads((tmp_path / "trace.json").read_text())
    names = {e["args"]["name"] for e in trace["traceEvents"] if e["ph"] == "M"}
    assert names == {"Python (ops)", "C++ kernels", "profiler"}
    assert any(e["ph"] == "C" and e["name"] == "tape memory" for e in trace["traceEvents"])
    spans = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    assert all(e["dur"] >= 0 and e["ts"] >= 0 for e in spans)
    op_time = sum(e["dur"] for e in spans if e["tid"] == 1) / 1e6
    assert 0 < op_time <= wall  # the ops are part of the step (the optimiser's step is not an op)


def test_profile_names_the_conv_algorithm_on_resnet8():
    from minigrad.nn import functional as F

    model = mg.models.resnet8()
    x, y = mg.randn(4, 3, 16, 16), mg.tensor([0, 1, 2, 3])
    with inspect.profile() as prof:
        F.cross_entropy(model(x), y).backward()
    labels = [name for name, _ in prof.rows if name.startswith("Conv2d[")]
    assert labels and all(label.endswith("]") for label in labels)


def test_train_profile_writes_a_trace(tmp_path):
    import json

    pytest.importorskip("sklearn")
    from minigrad import cli

    cli.main(["train", "--profile", "--epochs", "1", "--train-size", "400", "--out", str(tmp_path / "run")])
    trace = json.loads((tmp_path / "run" / "trace.json").read_text())
    assert any(e["ph"] == "X" and e["name"].startswith("Conv2d") for e in trace["traceEvents"])


def _mlp_and_batch():
    mg.manual_seed(0)
    model = nn.Sequential(nn.Linear(100, 200), nn.ReLU(), nn.Linear(200, 10))
    return model, mg.randn(64, 100)


def test_memory_counts_what_the_tape_keeps_and_frees_it_in_backward(tmp_path):
    model, x = _mlp_and_batch()
    with inspect.profile() as prof:
        model(x).sum().backward()
    memory = prof.memory
    # kept: the first Linear's output (ReLU's input) and ReLU's output (the second Linear's
    # input, counted once), 64x200 float32 each, and the logits Sum reads, 64x10; the batch and
    # the weights are leaves: they live on without the tape
    hidden, logits = 64 * 200 * 4, 64 * 10 * 4
    assert memory.peak_bytes == 2 * hidden + logits
    assert memory.live_bytes[-1] == 0  # backward freed everything
    # per holder each node's own buffers: ReLU its input and output, the second Linear its input
    # (ReLU's output, a view of it saved too: one buffer), the first Linear only leaves
    assert memory.holders_at_peak == [("ReLU", 2 * hidden, 1), ("Linear", hidden, 2), ("Sum", logits, 1)]
    assert "peak 102.5 KiB" in prof.table()
    memory.plot(tmp_path / "memory.png")
    assert (tmp_path / "memory.png").read_bytes()[:4] == b"\x89PNG"


def test_memory_of_a_graph_dropped_without_backward_and_kept_with_retain_graph():
    model, x = _mlp_and_batch()
    with inspect.profile() as prof:
        out = model(x)
        del out  # the graph goes with its output
    assert prof.memory.peak_bytes == 2 * 64 * 200 * 4 and prof.memory.live_bytes[-1] == 0
    with inspect.profile() as prof:
        loss = model(x).sum()
        loss.backward(retain_graph=True)  # the tape keeps everything for a second backward
    assert prof.memory.live_bytes[-1] == prof.memory.peak_bytes > 0


def test_memory_on_resnet8_names_batch_norm_and_convolutions_as_holders():
    from minigrad.nn import functional as F

    model = mg.models.resnet8()
    with inspect.profile() as prof:
        F.cross_entropy(model(mg.randn(4, 3, 16, 16)), mg.tensor([0, 1, 2, 3])).backward()
    holders = {op.split("[")[0] for op, _, _ in prof.memory.holders_at_peak}
    assert {"BatchNorm", "Conv2d"} <= holders and prof.memory.live_bytes[-1] == 0
    # each forward row says how much it saved; the tape's peak cannot exceed their sum
    saved = sum(row[5] for (_, phase), row in prof.rows.items() if phase == "forward")
    assert 0 < prof.memory.peak_bytes <= saved


def test_trace_covers_the_step():
    """The ops' spans (with the engine's bookkeeping for each) and the profile's own time add up
    to nearly all of a forward and backward; the rest is Python between ops (module calls,
    ordering the tape). Best of three, so a busy machine does not decide it."""
    import time

    from minigrad.nn import functional as F

    model = mg.models.lenet5()
    x, y = mg.randn(32, 1, 28, 28), mg.tensor([i % 10 for i in range(32)])
    F.cross_entropy(model(x), y).backward()
    coverage = []
    for _ in range(3):
        with inspect.profile() as prof:
            start = time.perf_counter()
            F.cross_entropy(model(x), y).backward()
            wall = time.perf_counter() - start
        spans = sum(seconds for track, _, _, seconds, _ in prof.events if track in ("Python (ops)", "profiler"))
        coverage.append(spans / wall)
    assert 0.85 <= max(coverage) <= 1.0, coverage


def test_graph_of_a_model_run_knows_each_nodes_module_and_collapses_by_layer(tmp_path):
    model = mg.models.resnet8()
    g = inspect.graph(model, mg.randn(2, 3, 16, 16))
    modules = {n.op: set() for n in g.nodes}
    for n in g.nodes:
        modules[n.op].add(n.module)
    assert {"conv1", "layer1.0.conv1", "layer3.0.downsample.0"} <= {m for op, ms in modules.items() for m in ms}
    # each block's skip connection joins inside its bn2 (relu(bn2(conv2(h)) + shortcut), one
    # pass): the last input of that node is the shortcut, the stem's output for layer1's
    # identity, the projection's batch norm for the others
    assert "Add" not in modules
    joins = {n.module: n.inputs[-1] for n in g.nodes if n.module.endswith(".bn2")}
    shortcut = {n.module: i for i, n in enumerate(g.nodes) if n.module in ("bn1",) or n.module.endswith("downsample.1")}
    assert joins == {
        "layer1.0.bn2": shortcut["bn1"],
        "layer2.0.bn2": shortcut["layer2.0.downsample.1"],
        "layer3.0.bn2": shortcut["layer3.0.downsample.1"],
    }
    assert modules["Reshape"] == {""}  # the model's forward flattens by itself
    top = g.collapse(1)
    assert top.ops() == [
        "fc (Linear)",
        "Reshape",
        "avgpool (AdaptiveAvgPool2d)",
        "layer3 (Sequential)",
        "layer2 (Sequential)",
        "layer1 (Sequential)",
        "bn1 (BatchNorm2d)",
        "conv1 (Conv2d)",
    ]
    layer2 = top.nodes[4]
    assert layer2.inputs == [5] and layer2.input_shapes == [(2, 16, 16, 16)] and layer2.output_shape == (2, 32, 8, 8)
    assert layer2.saved_bytes == sum(n.saved_bytes for n in g.nodes if n.module.startswith("layer2."))
    assert top.nodes[0].inputs == [1]  # fc's own weight and bias are folded in
    assert top.nodes[-1].inputs == ["constant"] and len(top) == 8
    blocks = g.collapse(2)
    assert "layer2.0 (BasicBlock)" in blocks.ops() and len(blocks) == 8
    dot = g.to_dot()  # expanded: each block and container is a box around its ops
    assert "subgraph cluster_layer2_0 {" in dot and 'label="layer2.0 (BasicBlock)"' in dot
    assert dot.count("{") == dot.count("}")
    assert "shape=box, style=rounded" in top.to_dot()
    with pytest.raises(ValueError, match="needs each node's module"):
        inspect.graph(model(mg.randn(2, 3, 16, 16)), model).collapse()
    with pytest.raises(ValueError, match="depth must be a positive whole number"):
        g.collapse(0)
    with pytest.raises(TypeError, match=r"graph\(model, \*inputs\)"):
        inspect.graph(mg.randn(2, requires_grad=True) * 2, mg.randn(2))


def test_graph_of_a_long_chain_needs_no_recursion():
    x = mg.randn(3, requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0
    g = inspect.graph(y.sum())
    assert len(g) == 5001 and g.nodes[-1].inputs == ["input", "constant"]


def test_graph_total_counts_each_buffer_once_as_the_profile_does():
    model, x = _mlp_and_batch()
    loss = model(x).sum()
    g = inspect.graph(loss, model)
    hidden, logits = 64 * 200 * 4, 64 * 10 * 4
    # per node: ReLU keeps a and h, the second Linear h again, Sum the logits
    assert [n.saved_bytes for n in g.nodes] == [logits, hidden, 2 * hidden, 0]
    assert g.saved_bytes == 2 * hidden + logits


@pytest.mark.parametrize("name, shape", [("lenet5", (2, 1, 28, 28)), ("resnet8", (2, 3, 8, 8))])
def test_check_gradients_passes_lenet5_and_resnet8(name, shape):
    mg.manual_seed(0)
    model = mg.models.create(name, shape[1:])
    results = inspect.check_gradients(model, mg.randn(*shape), samples=4)
    assert len(results) == len(list(model.parameters()))
    # float64 centred differences against the tape: ReLU and max-pool kinks allow up to 1e-4
    assert all(r.max_relative_error < 1e-4 for r in results), results[0]
