"""Writes docs/internals.md and its pictures from a real run: the graph of a small network, one
backward pass walked node by node (each gradient checked against its formula here, so the page
cannot drift from the engine), the profile trace and memory plot of a LeNet-5 training step, the
learning-dynamics watch on a broken and a healthy network, and a gradient check that catches a
wrong backward.

    python docs/make_internals.py            # rewrites docs/internals.md and docs/images/internals-*
    python docs/make_internals.py --out DIR  # elsewhere (the tests do this)
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import pathlib
import platform
import textwrap

import numpy as np

# The walk-through, run here and shown on the page as it is.
WALK = textwrap.dedent(
    """\
    import numpy as np
    import minigrad as mg
    import minigrad.nn.functional as F
    from minigrad import inspect, nn

    mg.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    x = mg.tensor(np.array([[1.0, -2.0, 0.5], [0.0, 1.0, 1.0], [2.0, 0.5, -1.0], [-1.0, -1.0, 2.0]], np.float32))
    y = mg.tensor([0, 1, 1, 0])

    a = model[0](x)  # pre-activation  a = x W1^T + b1
    h = model[1](a)  # hidden layer    h = max(a, 0)
    z = model[2](h)  # logits          z = h W2^T + b2
    loss = F.cross_entropy(z, y)
    for t in (a, h, z):
        t.retain_grad()  # keep the gradients of these intermediate tensors, to look at them

    graph = inspect.graph(loss, model)
    for node in graph.nodes:
        print(node.index, node.op, node.input_shapes, "->", node.output_shape, node.saved_bytes, "bytes kept")
    loss.backward()
    print("dL/dz =", z.grad.numpy().round(4))
    """
)

CHECK = textwrap.dedent(
    """\
    import minigrad as mg
    from minigrad import inspect
    from minigrad.autograd import Function


    class Cube(Function):
        def forward(self, x):
            self.x = x
            return x**3

        def backward(self, grad):
            return grad * 2 * self.x**2  # wrong on purpose: d(x^3)/dx = 3 x^2


    for result in inspect.check_gradients(lambda x: Cube.apply(x), mg.randn(5, requires_grad=True)):
        print(result)
    """
)


def _matrix(array: np.ndarray) -> str:
    array = np.where(np.abs(array) < 5e-5, 0.0, array)  # no "-0.0000"
    rows = ["[" + ", ".join(f"{v: .4f}" for v in row) + "]" for row in np.atleast_2d(array)]
    return "\n".join(rows)


def _run(code: str) -> tuple[dict, str]:
    scope: dict = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "<internals>", "exec"), scope)
    return scope, out.getvalue()


def _walk_section(images: pathlib.Path, lines: list) -> None:
    s, printed = _run(WALK)
    model, x, y, a, h, z = (s[k] for k in ("model", "x", "y", "a", "h", "z"))
    graph = s["graph"]
    w1, b1, w2, b2 = (p.data.astype(np.float64) for p in model.parameters())
    xs, labels = x.data.astype(np.float64), y.data
    # the same gradients from the formulas, by hand in float64
    logits = xs @ w1.T + b1
    hidden = np.maximum(logits, 0)
    zs = hidden @ w2.T + b2
    p = np.exp(zs - zs.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    dz = (p - np.eye(2)[labels]) / len(labels)
    dh = dz @ w2
    da = dh * (logits > 0)
    expected = {
        "dz": (z.grad.data, dz),
        "dW2": (model[2].weight.grad.data, dz.T @ hidden),
        "db2": (model[2].bias.grad.data, dz.sum(0)),
        "dh": (h.grad.data, dh),
        "da": (a.grad.data, da),
        "dW1": (model[0].weight.grad.data, da.T @ xs),
        "db1": (model[0].bias.grad.data, da.sum(0)),
    }
    for name, (tape, formula) in expected.items():
        np.testing.assert_allclose(tape, formula, rtol=1e-5, atol=1e-6, err_msg=name)
    picture = _picture(graph, images / "internals-graph")
    lines += [
        "## 1. A small graph, recorded",
        "",
        "A two-layer network on four samples of three features: `Linear(3, 4) -> ReLU -> Linear(4, 2)`",
        "and cross-entropy. Every op call records one node on the tape (`minigrad/autograd.py`,",
        "`Function.apply`): the op, the tensors it read, and what its backward will need.",
        "",
        "```python",
        WALK.rstrip(),
        "```",
        "",
        "```text",
        printed.rstrip(),
        "```",
        "",
        picture,
        "",
        "Reading the picture from the bottom: the leaves (blue boxes) are the input batch (`constant`:",
        "it needs no gradient) and the parameters, named by their module path; each ellipse is one",
        "recorded op with its input shapes, output shape and the bytes it keeps alive for backward",
        "(its saved arrays and the outputs of other ops it links to; the leaves are not counted, they",
        "live on without the tape). The first Linear reads only leaves and keeps nothing; ReLU keeps its",
        "input `a` and its output `h`; the second Linear keeps `h` too, so the per-node figures count",
        "it twice, while the profile's memory count (section 4) counts each buffer once.",
        "",
        "## 2. One backward pass, node by node",
        "",
        "`loss.backward()` orders the nodes so each comes after every node that uses its output (one",
        "iterative depth-first walk, `_topological_order`), seeds dL/dL = 1, and visits them in",
        "that order. Each node's backward turns the gradient of its output into gradients of its",
        "inputs; the engine sums over broadcast axes, checks shapes, adds up gradients that arrive",
        "from several consumers, gives leaves their `.grad`, and frees the node's saved arrays.",
        "The numbers below are this run's, and the script that wrote this page recomputed each",
        "one from the formula in float64 and checked the tape agrees.",
        "",
        "**CrossEntropy** (mean over N = 4 samples): dL/dz = (softmax(z) - onehot(y)) / N",
        "",
        "```text",
        _matrix(z.grad.data),
        "```",
        "",
        "**Linear** (z = h W2^T + b2): dL/dW2 = (dL/dz)^T h, dL/db2 = sum over samples of dL/dz,",
        "dL/dh = dL/dz W2",
        "",
        "```text",
        "dL/dW2 =",
        _matrix(model[2].weight.grad.data),
        "dL/db2 =",
        _matrix(model[2].bias.grad.data),
        "dL/dh =",
        _matrix(h.grad.data),
        "```",
        "",
        "**ReLU** (h = max(a, 0)): dL/da = dL/dh * [a > 0]: the gradient passes where the unit was",
        "active and stops where it was not (a unit that is never active never learns: a dead ReLU).",
        "",
        "```text",
        _matrix(a.grad.data),
        "```",
        "",
        "**Linear** (a = x W1^T + b1): dL/dW1 = (dL/da)^T x, dL/db1 = sum of dL/da; x is a constant, so",
        "no dL/dx is computed (`needs_input_grad` tells the node).",
        "",
        "```text",
        "dL/dW1 =",
        _matrix(model[0].weight.grad.data),
        "dL/db1 =",
        _matrix(model[0].bias.grad.data),
        "```",
        "",
        f"After the pass the tape holds nothing: {len(graph)} nodes visited, each freed as soon as it ran.",
        "",
    ]


def _picture(graph, stem: pathlib.Path) -> str:
    """Renders the SVG where Graphviz is installed; the .dot text is always written."""
    graph.save(stem.with_suffix(".dot"))
    try:
        graph.save(stem.with_suffix(".svg"))
    except (ImportError, RuntimeError) as error:
        print(f"graph picture not rendered ({error}); {stem.with_suffix('.dot')} written")
        return f"(Graph picture: `images/{stem.name}.dot`; render it with Graphviz's `dot -Tsvg`.)"
    return f"![the recorded graph](images/{stem.name}.svg)"


def _profile_section(images: pathlib.Path, lines: list) -> None:
    import minigrad as mg
    import minigrad.nn.functional as F
    from minigrad import inspect

    mg.manual_seed(0)
    model = mg.models.lenet5()
    optimizer = mg.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = mg.randn(64, 1, 28, 28), mg.tensor(np.arange(64) % 10)

    def step():
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()

    for _ in range(3):  # warm: first calls choose algorithms and grow buffers
        step()
    with inspect.profile() as prof:
        step()
    prof.export_chrome_trace(images / "internals-trace.json")
    prof.memory.plot(images / "internals-memory.png")
    json.loads((images / "internals-trace.json").read_text())  # valid JSON, or this script fails
    lines += [
        "## 3. Where a training step's time goes",
        "",
        "`inspect.profile()` sets the tape's profiler hook (`Function.profiler`, None otherwise) and",
        "wraps the compiled kernels while it is on. Each op's time includes the engine's work around",
        "it (checking inputs, picking dtypes, linking the node; in backward the hooks, version",
        "checks, unbroadcasting and accumulation); the kernels' share, their FLOPs and bytes sit",
        f"beside it. One LeNet-5 step, batch 64, SGD with momentum, {mg.get_num_threads()} threads",
        f"({platform.machine()}, {mg.backend_info()['isa']}):",
        "",
        "<!-- fragment -->",
        "```python",
        "with inspect.profile() as prof:",
        "    step()",
        'prof.export_chrome_trace("trace.json")  # Perfetto or chrome://tracing',
        "print(prof.table(limit=10))",
        "```",
        "",
        "```text",
        prof.table(limit=10),
        "```",
        "",
        "The trace, [`images/internals-trace.json`](images/internals-trace.json), has a track for the",
        "ops, one for the kernels inside them, one for the profile's own time and a counter of the",
        "tape's memory. `minigrad train --profile` writes the same for training steps 3-7.",
        "",
        "## 4. Where a step's memory goes",
        "",
        "What the tape keeps for backward rises through the forward pass, peaks when the loss is",
        "computed, and falls as backward frees each node right after it runs:",
        "",
        "![tape memory over one LeNet-5 step](images/internals-memory.png)",
        "",
        "```text",
        prof.memory.summary(),
        "```",
        "",
        "The ReLU outputs, the pooling inputs and outputs and the convolutions' inputs are the",
        "activations backward needs; the weights are not counted (they live on without the tape).",
        "Halving the batch halves them; `no_grad()` (evaluation) records nothing at all.",
        "",
    ]


def _watch_section(images: pathlib.Path, lines: list) -> None:
    import minigrad as mg
    import minigrad.nn.functional as F
    from minigrad import inspect, nn, optim

    rng = np.random.default_rng(0)
    inputs = rng.standard_normal((512, 64)).astype(np.float32)
    labels = inputs[:, :10].argmax(1)

    def train(model, lr, steps=20):
        optimizer = optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        watch = inspect.watch(model, every=5)
        for _ in range(steps):
            pick = rng.choice(len(inputs), 64, replace=False)
            loss = F.cross_entropy(model(mg.tensor(inputs[pick])), mg.tensor(labels[pick]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        return watch

    def mlp(activation, bias=None):
        layers = [nn.Linear(64, 64), activation(), nn.Linear(64, 64), activation(), nn.Linear(64, 10)]
        if bias is not None:
            for layer in layers[:4:2]:
                layer.bias.data[:] = bias
        return nn.Sequential(*layers)

    mg.manual_seed(0)
    broken = train(mlp(nn.ReLU, bias=-5.0), lr=0.05)
    healthy = train(mlp(nn.ReLU), lr=0.05)
    healthy.plot(images / "internals-watch.png")
    with contextlib.redirect_stdout(io.StringIO()):
        broken_report, healthy_report = broken.report(), healthy.report()
    lines += [
        "## 5. Learning dynamics, and the lectures' alarms",
        "",
        "`inspect.watch(model, every=N)` samples one training step in N through forward hooks on the",
        "layers and gradient hooks on the parameters: each layer's activation mean and spread, the",
        "fraction exactly zero and the fraction saturated, its gradient norm, and how much the",
        "optimiser's step changed its weights relative to their size (rule of thumb: about 1e-3).",
        "A network whose hidden biases start at -5 has dead ReLUs from the first step:",
        "",
        "<!-- fragment -->",
        "```python",
        "watch = inspect.watch(model, every=5)  # or fit(..., callbacks=[watch]), or minigrad train --watch",
        "...  # train as usual",
        "watch.report()",
        "```",
        "",
        "```text",
        broken_report,
        "```",
        "",
        "The same network with its default initialisation stays silent:",
        "",
        "```text",
        healthy_report,
        "```",
        "",
        "![activation and gradient histograms of the healthy network](images/internals-watch.png)",
        "",
    ]


def _check_section(lines: list) -> None:
    _, printed = _run(CHECK)
    lines += [
        "## 6. Checking a backward you wrote",
        "",
        "`inspect.check_gradients` compares the tape's gradients with centred finite differences in",
        "float64 and grades the worst relative error (below 1e-7 fine, above 1e-2 probably wrong):",
        "",
        "```python",
        CHECK.rstrip(),
        "```",
        "",
        "```text",
        printed.rstrip(),
        "```",
        "",
    ]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path(__file__).resolve().parent)
    args = parser.parse_args(argv)
    images = args.out / "images"
    images.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Inside the engine: one backward pass, its time and its memory",
        "",
        "<!-- Written by docs/make_internals.py from a real run; edit that script, not this page. -->",
        "",
        "Everything on this page was produced by `minigrad.inspect` on the engine as it is: the",
        "graph picture, the numbers, the trace, the plots and the alerts. Regenerate it with",
        "`python docs/make_internals.py`.",
        "",
    ]
    _walk_section(images, lines)
    _profile_section(images, lines)
    _watch_section(images, lines)
    _check_section(lines)
    from minigrad.io import write_atomically

    write_atomically(args.out / "internals.md", ["\n".join(lines).encode()])
    print(f"wrote {args.out / 'internals.md'}")


if __name__ == "__main__":
    main()
