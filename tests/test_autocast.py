"""bfloat16 storage and ``autocast`` (minigrad/amp.py, minigrad/dtypes.py), against PyTorch's.

Per-op parity runs through the op harness's bfloat16 mode (tests/harness.py, check_autocast),
whose tolerances come from bfloat16's 8 significant bits; here: the dtype, the op lists, the
cast cache, whole layers and models, checkpoints, and training accuracy.
"""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn

from harness import OpCase, bf16_ulp, check_autocast
from isolated import run_python

ml_dtypes = pytest.importorskip("ml_dtypes")
torch = pytest.importorskip("torch")

BF16 = np.dtype(ml_dtypes.bfloat16)


def to_numpy(t) -> np.ndarray:
    return t.detach().float().numpy().astype(np.float64) if hasattr(t, "detach") else np.asarray(t, np.float64)


# ------------------------------------------------------------------------------ the dtype
def test_float32_rounds_to_bfloat16_to_nearest_even():
    x = mg.tensor(np.array([1 + 2**-8, 1 + 3 * 2**-8, -(1 + 2**-7), 65535.0], np.float32))
    b = x.bfloat16()
    assert b.dtype == BF16 and mg.bfloat16 is ml_dtypes.bfloat16
    # 1 + 2^-8 is halfway between 1 and 1 + 2^-7: to the even one, 1; 1 + 3*2^-8 to 1 + 2^-6
    # 65535 = 2^16 - 1 needs 16 significant bits; with 8 it rounds up to 2^16
    np.testing.assert_array_equal(b.float().numpy(), [1.0, 1 + 2**-6, -(1 + 2**-7), 65536.0])
    assert mg.tensor([1.5], dtype=mg.bfloat16).dtype == BF16
    assert x.to("bfloat16").dtype == BF16


FRESH_PROCESS_BF16 = """
import sys
import numpy as np
import minigrad as mg
assert "ml_dtypes" not in sys.modules  # importing minigrad does not pay for ml_dtypes (1.4 s)
x = mg.tensor([1.5, -2.25])
assert (x * 2).dtype == np.float32 and "ml_dtypes" not in sys.modules
print(x.to("bfloat16").dtype, mg.zeros(2, dtype="bfloat16").dtype, mg.bfloat16.__name__)
"""
FOREIGN_BF16 = """
import ml_dtypes, numpy as np
import minigrad as mg
a = np.array([1.5, 3.0], ml_dtypes.bfloat16)  # made by the program, before minigrad ever asked
t = mg.tensor(a, requires_grad=True)
(t * t).sum().backward()
print(t.dtype, t.grad.dtype, t.grad.numpy().astype(np.float32).tolist())
"""


def test_bfloat16_is_imported_on_first_use_whoever_uses_it_first():
    fresh = run_python(FRESH_PROCESS_BF16)
    assert fresh.returncode == 0, fresh.stderr
    assert fresh.stdout.split() == ["bfloat16", "bfloat16", "bfloat16"]
    foreign = run_python(FOREIGN_BF16)
    assert foreign.returncode == 0, foreign.stderr
    assert foreign.stdout.split() == ["bfloat16", "bfloat16", "[3.0,", "6.0]"]


def test_bfloat16_arithmetic_follows_pytorchs_promotion_and_differentiates():
    a = mg.tensor(np.array([1.5, -2.25, 3.0], np.float32)).bfloat16().requires_grad_()
    f = mg.tensor(np.array([0.5, 0.5, 0.5], np.float32))
    assert (a * a).dtype == BF16  # bfloat16 op bfloat16 -> bfloat16
    assert (a + f).dtype == np.float32  # with a float32 operand -> float32, as torch
    loss = (a * a).float().sum()
    loss.backward()
    assert a.grad.dtype == BF16
    np.testing.assert_array_equal(a.grad.float().numpy(), [3.0, -4.5, 6.0])


def test_bfloat16_saves_as_BF16_and_loads_in_pytorch_and_back(tmp_path):
    safetensors_torch = pytest.importorskip("safetensors.torch")
    values = np.array([[1.0, -0.5, 3.140625], [1e-3, 65280.0, -7.0]], np.float32)
    mg.io.save({"w": mg.tensor(values).bfloat16()}, tmp_path / "mg.safetensors")
    theirs = safetensors_torch.load_file(str(tmp_path / "mg.safetensors"))["w"]
    assert theirs.dtype == torch.bfloat16
    np.testing.assert_array_equal(theirs.float().numpy(), torch.from_numpy(values).bfloat16().float().numpy())
    safetensors_torch.save_file({"w": torch.from_numpy(values).bfloat16()}, str(tmp_path / "torch.safetensors"))
    ours = mg.io.load(tmp_path / "torch.safetensors")["w"]
    assert ours.dtype == BF16
    np.testing.assert_array_equal(ours.float().numpy(), theirs.float().numpy())


def test_a_bfloat16_checkpoint_loads_into_a_float32_model(tmp_path):
    torch.manual_seed(0)
    twin = torch.nn.Linear(4, 3)
    state = {k: v.bfloat16() for k, v in twin.state_dict().items()}
    pytest.importorskip("safetensors.torch").save_file(state, str(tmp_path / "bf16.safetensors"))
    model = nn.Linear(4, 3)
    model.load_state_dict(mg.io.load(tmp_path / "bf16.safetensors"))
    assert model.weight.dtype == np.float32
    np.testing.assert_array_equal(model.weight.numpy(), state["weight"].float().numpy())


# ------------------------------------------------------------------------- autocast rules
def test_autocast_op_lists():
    x = mg.randn(8, 16, requires_grad=True)
    lin = nn.Linear(16, 10)
    with mg.autocast("cpu", dtype=mg.bfloat16):
        assert mg.is_autocast_enabled()
        y = lin(x)
        assert y.dtype == BF16  # lower-precision list
        assert y.relu().dtype == BF16  # runs in its input's dtype
        assert mg.softmax(y, 1).dtype == np.float32  # float32 list
        assert nn.functional.cross_entropy(y, mg.tensor(np.arange(8) % 10)).dtype == np.float32
        assert y.sum().dtype == np.float32
        with mg.autocast("cpu", dtype=mg.bfloat16, enabled=False):
            assert lin(x).dtype == np.float32 and not mg.is_autocast_enabled()
    assert not mg.is_autocast_enabled() and lin(x).dtype == np.float32

    @mg.autocast("cpu", dtype=mg.bfloat16)
    def forward(v):
        return lin(v)

    assert forward(x).dtype == BF16
    with pytest.raises(ValueError, match="only dtype=minigrad.bfloat16"):
        mg.autocast("cpu", dtype=np.float16)
    with pytest.raises(ValueError, match="CPU only"):
        mg.autocast("cuda")


def test_parameter_roundings_are_made_once_per_region_and_gradients_arrive_unrounded():
    lin = nn.Linear(6, 4)
    x = mg.randn(3, 6)
    with mg.autocast("cpu", dtype=mg.bfloat16):
        first, second = lin(x), lin(x)
        # both products used the same bfloat16 rounding of the weight, made inside the op: the
        # tape holds the float32 parameter itself, no cast node
        rounded = first._node.weight
        assert second._node.weight is rounded
        # held as bfloat16 where the bfloat16 GEMM runs, widened once to float32 where it does not
        assert rounded.dtype == (np.float32 if mg.amp.BF16_KERNEL == "float32" else BF16)
        np.testing.assert_array_equal(rounded, lin.weight.numpy().astype(BF16))
        assert first._node.inputs[1] is lin.weight
        loss = (first.float() + second.float()).sum()
    loss.backward()
    assert lin.weight.grad.dtype == np.float32 and lin.bias.grad.dtype == np.float32
    # dW = 2 * column sums of the rounded x, accumulated in float32 and not rounded to bfloat16
    # afterwards (PyTorch's cast would round it: an error up to 2^-9 of the value)
    x_bf = x.numpy().astype(BF16).astype(np.float32)
    np.testing.assert_allclose(lin.weight.grad.numpy(), 2 * np.ones((4, 1)) * x_bf.sum(0), rtol=1e-6)
    with mg.autocast("cpu", dtype=mg.bfloat16):
        third = lin(x)
    assert third._node.weight is not rounded  # a new region, a new rounding


def test_a_cached_rounding_is_remade_after_the_optimiser_changes_the_weight():
    """A whole training loop inside one autocast region: each step's forward must use the
    bfloat16 rounding of the weight as it is now, not the one cached before the last update."""
    lin = nn.Linear(3, 2)
    opt = mg.optim.SGD(lin.parameters(), lr=0.5)
    x = mg.randn(4, 3)
    with mg.autocast("cpu", dtype=mg.bfloat16):
        for _ in range(3):
            y = lin(x)
            used = y._node.weight
            np.testing.assert_array_equal(used, lin.weight.numpy().astype(BF16))
            opt.zero_grad()
            y.float().sum().backward()
            opt.step()


# -------------------------------------------------------------- parity with torch.autocast
def test_larger_matmul_linear_and_conv2d_match_torch_autocast():
    """The harness's bfloat16 mode (tests/harness.py) at sizes where float32 accumulation order
    matters: 96 and 577 products per output value."""
    F = nn.functional
    check_autocast(OpCase(F.linear, torch.nn.functional.linear, [(32, 96), (64, 96), (64,)], autocast_terms=97))
    check_autocast(OpCase(lambda a, b: a @ b, lambda a, b: a @ b, [(3, 32, 96), (96, 40)], autocast_terms=96))
    for stride, padding in [(1, 1), (2, 0)]:
        geometry = dict(stride=stride, padding=padding)
        case = OpCase(
            lambda *a, g=geometry: F.conv2d(*a, **g),
            lambda *a, g=geometry: torch.nn.functional.conv2d(*a, **g),
            [(4, 64, 10, 10), (16, 64, 3, 3), (16,)],
            autocast_terms=64 * 9 + 1,
        )
        check_autocast(case)


@pytest.mark.parametrize("relu, residual", [(False, False), (True, False), (True, True), (False, True)])
def test_batch_norm_keeps_bfloat16_activations_like_torch_autocast(relu, residual):
    """A bfloat16 activation through batch norm under autocast: a bfloat16 output, float32
    statistics and weight gradients. Output and the input's gradient lie within one bfloat16
    step of the float64 batch norm of the same bfloat16 values (each is one float32 result
    rounded once; the float32 sums over the channel's 256 values add a little), and match
    PyTorch's autocast batch norm within that plus PyTorch's own distance. With ``residual`` a
    bfloat16 skip path joins before the ReLU (ours in the same pass, rounded once; PyTorch's a
    separate add of two bfloat16 tensors) and its gradient is checked too."""
    F = nn.functional
    rng = np.random.default_rng(11)
    x = (rng.standard_normal((4, 3, 8, 8)) * 2 + 1).astype(np.float32)
    weight, bias = rng.standard_normal(3).astype(np.float32), rng.standard_normal(3).astype(np.float32)
    skip = rng.standard_normal(x.shape).astype(np.float32)
    c = rng.standard_normal(x.shape).astype(np.float32)
    x_bf, skip_bf = x.astype(BF16).astype(np.float64), skip.astype(BF16).astype(np.float64)
    names = ("dx", "dweight", "dbias") + (("dresidual",) if residual else ())

    ours = [mg.tensor(a, requires_grad=True) for a in (x, weight, bias, skip)]
    running = [mg.zeros(3), mg.ones(3)]
    with mg.autocast("cpu", dtype=mg.bfloat16):
        joined = ours[3].bfloat16() if residual else None
        out = F.batch_norm(ours[0].bfloat16(), *running, ours[1], ours[2], training=True, relu=relu, residual=joined)
    assert out.dtype == BF16 and running[0].dtype == np.float32
    (out.float() * mg.tensor(c)).sum().backward()

    theirs = [torch.tensor(a, requires_grad=True) for a in (x, weight, bias, skip)]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ref = torch.nn.functional.batch_norm(
            theirs[0].bfloat16(), torch.zeros(3), torch.ones(3), theirs[1], theirs[2], training=True
        )
        ref = ref + theirs[3].bfloat16() if residual else ref
        ref = torch.relu(ref) if relu else ref
    assert ref.dtype == torch.bfloat16
    (ref.float() * torch.tensor(c)).sum().backward()

    exact_in = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in (x_bf, weight, bias, skip_bf)]
    exact = torch.nn.functional.batch_norm(exact_in[0], None, None, exact_in[1], exact_in[2], training=True)
    exact = exact + exact_in[3] if residual else exact
    exact = torch.relu(exact) if relu else exact
    exact.backward(torch.from_numpy(c.astype(BF16).astype(np.float64)))

    def close(got, want, exact_values, what):
        scale = np.abs(exact_values).max()
        tol = bf16_ulp(exact_values) + 2**-14 * scale
        assert np.all(np.abs(got - exact_values) <= tol), (what, "vs exact", np.abs(got - exact_values).max())
        assert np.all(np.abs(got - want) <= tol + np.abs(want - exact_values)), (what, "vs PyTorch")

    close(to_numpy(out).astype(np.float64), to_numpy(ref).astype(np.float64), exact.detach().numpy(), "output")
    for i, what in enumerate(names):
        assert ours[i].grad.dtype == np.float32, what
        close(
            ours[i].grad.numpy().astype(np.float64),
            theirs[i].grad.numpy().astype(np.float64),
            exact_in[i].grad.numpy(),
            what,
        )


def test_every_layer_runs_under_autocast_and_lenet_matches_torch():
    """A whole LeNet-5 step under both autocasts, same weights: logits and loss within bfloat16
    tolerance of each other (several bfloat16 roundings deep, so a few ulps, not one)."""
    import torch_twins

    mg.manual_seed(0)
    model = mg.models.lenet5()
    twin = torch_twins.lenet5()
    twin.load_state_dict({k: torch.from_numpy(np.array(v.numpy())) for k, v in model.state_dict().items()})
    rng = np.random.default_rng(2)
    x = rng.standard_normal((16, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, 16)
    with mg.autocast("cpu", dtype=mg.bfloat16):
        logits = model(mg.tensor(x))
        loss = nn.functional.cross_entropy(logits, mg.tensor(y))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ref_logits = twin(torch.from_numpy(x))
        ref_loss = torch.nn.functional.cross_entropy(ref_logits, torch.from_numpy(y))
    assert logits.dtype == BF16 and ref_logits.dtype == torch.bfloat16
    np.testing.assert_allclose(to_numpy(logits), to_numpy(ref_logits), atol=8 * bf16_ulp(to_numpy(ref_logits)).max())
    assert abs(loss.item() - ref_loss.item()) <= 2**-6 * abs(ref_loss.item())
    loss.backward()
    ref_loss.backward()
    for (name, p), q in zip(model.named_parameters(), twin.parameters()):
        assert p.grad.dtype == np.float32, name
        scale = np.abs(q.grad.numpy()).max()
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), atol=2**-5 * scale, err_msg=name)


# Every layer of minigrad.nn, built small, with its input shape and the dtype its output has under
# autocast: bfloat16 after a lower-precision op (or an op that keeps its bfloat16 input's dtype:
# batch norm among them, as in PyTorch), float32 from the float32 list (layer, group and instance
# norm, softmax) or when only float32 went in.
LAYERS = {
    "AdaptiveAvgPool2d": (lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1)), (2, 3, 6, 6), BF16),
    "AvgPool2d": (lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.AvgPool2d(2)), (2, 3, 6, 6), BF16),
    "BasicBlock": (lambda: nn.BasicBlock(3, 4, stride=2), (2, 3, 6, 6), BF16),  # ends in batch norm
    "BatchNorm1d": (lambda: nn.Sequential(nn.Linear(5, 4), nn.BatchNorm1d(4)), (3, 5), BF16),
    "BatchNorm2d": (lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)), (2, 3, 6, 6), BF16),
    # one process: the batch norm op itself (across processes: float32, its all-reduced statistics)
    "SyncBatchNorm": (lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.SyncBatchNorm(4)), (2, 3, 6, 6), BF16),
    "Conv2d": (lambda: nn.Conv2d(3, 4, 3, padding=1), (2, 3, 6, 6), BF16),
    "DenseBlock": (lambda: nn.DenseBlock(2, 3, 2, bottleneck=4), (2, 3, 6, 6), np.float32),
    "DenseLayer": (lambda: nn.DenseLayer(3, 2), (2, 3, 6, 6), BF16),
    "DropConnect": (lambda: nn.DropConnect(nn.Linear(5, 4), 0.3), (3, 5), BF16),
    "DropConnectLinear": (lambda: nn.DropConnectLinear(5, 4, p=0.3), (3, 5), BF16),
    "Dropout": (lambda: nn.Sequential(nn.Linear(5, 4), nn.Dropout(0.3)), (3, 5), BF16),
    "Dropout2d": (lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.Dropout2d(0.3)), (2, 3, 6, 6), BF16),
    "Flatten": (lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten()), (2, 3, 6, 6), BF16),
    "GaussianNoise": (lambda: nn.Sequential(nn.Linear(5, 4), nn.GaussianNoise(0.1)), (3, 5), BF16),
    "GroupNorm": (lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.GroupNorm(2, 4)), (2, 3, 6, 6), np.float32),
    "Identity": (lambda: nn.Sequential(nn.Linear(5, 4), nn.Identity()), (3, 5), BF16),
    "InstanceNorm2d": (
        lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.InstanceNorm2d(4, affine=True)),
        (2, 3, 6, 6),
        np.float32,
    ),
    "LayerNorm": (lambda: nn.Sequential(nn.Linear(5, 4), nn.LayerNorm(4)), (3, 5), np.float32),
    "LeakyReLU": (lambda: nn.Sequential(nn.Linear(5, 4), nn.LeakyReLU(0.1)), (3, 5), BF16),
    "Linear": (lambda: nn.Linear(5, 4), (3, 5), BF16),
    "LogSoftmax": (lambda: nn.Sequential(nn.Linear(5, 4), nn.LogSoftmax(1)), (3, 5), np.float32),
    "MaxPool2d": (lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.MaxPool2d(2)), (2, 3, 6, 6), BF16),
    "ModuleDict": (lambda: nn.ModuleDict({"fc": nn.Linear(5, 4)})["fc"], (3, 5), BF16),
    "ModuleList": (lambda: nn.Sequential(*nn.ModuleList([nn.Linear(5, 4), nn.ReLU()])), (3, 5), BF16),
    "NormReLU": (lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.NormReLU(nn.BatchNorm2d(4))), (2, 3, 6, 6), BF16),
    "ReLU": (lambda: nn.Sequential(nn.Linear(5, 4), nn.ReLU()), (3, 5), BF16),
    "Sequential": (lambda: nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 2)), (3, 5), BF16),
    "Sigmoid": (lambda: nn.Sequential(nn.Linear(5, 4), nn.Sigmoid()), (3, 5), BF16),
    "Softmax": (lambda: nn.Sequential(nn.Linear(5, 4), nn.Softmax(1)), (3, 5), np.float32),
    "Tanh": (lambda: nn.Sequential(nn.Linear(5, 4), nn.Tanh()), (3, 5), BF16),
    "Transition": (lambda: nn.Transition(4, 2), (2, 4, 6, 6), BF16),
}


def test_the_layer_table_covers_every_layer_of_minigrad_nn():
    import inspect

    layers = {n for n, c in vars(nn).items() if inspect.isclass(c) and issubclass(c, nn.Module) and c is not nn.Module}
    assert layers - set(LOSS_INPUTS) == set(LAYERS)  # the loss modules: the test below


# Each loss module on a linear layer's bfloat16 output (and what its target looks like).
LOSS_INPUTS = {
    "CrossEntropyLoss": lambda out: mg.tensor([0, 2, 1]),
    "NLLLoss": lambda out: mg.tensor([0, 2, 1]),
    "MSELoss": lambda out: mg.zeros(3, 4),
    "L1Loss": lambda out: mg.zeros(3, 4),
    "SmoothL1Loss": lambda out: mg.zeros(3, 4),
    "HuberLoss": lambda out: mg.zeros(3, 4),
    "BCEWithLogitsLoss": lambda out: mg.ones(3, 4),
    "BCELoss": lambda out: mg.ones(3, 4),
    "KLDivLoss": lambda out: mg.full((3, 4), 0.25),
}


@pytest.mark.parametrize("name", sorted(LOSS_INPUTS))
def test_every_loss_module_is_float32_under_autocast(name):
    """A loss on a bfloat16 activation gives a float32 loss that matches the float32 run within
    the bfloat16 rounding of its input, and float32 gradients for the parameters."""
    mg.manual_seed(0)
    model = nn.Linear(5, 4)
    x = mg.tensor(np.random.default_rng(3).standard_normal((3, 5)).astype(np.float32))
    squash = {
        "BCELoss": lambda t: t.sigmoid(),
        "NLLLoss": lambda t: t.log_softmax(1),
        "KLDivLoss": lambda t: t.log_softmax(1),
    }
    prepare = squash.get(name, lambda t: t)
    loss_fn = getattr(nn, name)()
    reference = loss_fn(prepare(model(x)), LOSS_INPUTS[name](None)).item()
    with mg.autocast("cpu", dtype=mg.bfloat16):
        out = model(x)
        assert out.dtype == BF16
        loss = loss_fn(prepare(out), LOSS_INPUTS[name](out))
    assert loss.dtype == np.float32, name
    assert abs(loss.item() - reference) <= 2**-6 * max(1.0, abs(reference)), (loss.item(), reference)
    loss.backward()
    assert model.weight.grad.dtype == np.float32 and np.isfinite(model.weight.grad.numpy()).all()


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_every_layer_trains_under_autocast_against_its_float32_self(name):
    """Forward under autocast gives the listed dtype, backward gives every parameter a float32
    gradient, and the output stays near the float32 forward of the same weights (several
    bfloat16 roundings deep: a few percent of the output's scale)."""
    build, shape, dtype = LAYERS[name]
    mg.manual_seed(0)
    model = build()
    model.train()
    x = mg.tensor(np.random.default_rng(3).standard_normal(shape).astype(np.float32))
    mg.manual_seed(1)  # the same dropout masks in both runs
    reference = model(x).numpy().astype(np.float64)
    mg.manual_seed(1)
    with mg.autocast("cpu", dtype=mg.bfloat16):
        out = model(x)
    assert out.dtype == dtype, name
    got = to_numpy(out)
    np.testing.assert_allclose(got, reference, atol=2**-5 * max(1.0, np.abs(reference).max()), err_msg=name)
    out.float().sum().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and p.grad.dtype == np.float32, (name, pname)


# ------------------------------------------------------------------------------ training
def test_lenet5_trained_under_autocast_reaches_the_float32_accuracy(tmp_path):
    """`minigrad train --precision bf16` (README's run: LeNet-5 on the digits, 30 epochs) ends
    at most half a point (under 2 of the 359 test images) below the float32 run."""
    pytest.importorskip("sklearn")
    from minigrad import cli

    accuracy = {}
    for precision in ("fp32", "bf16"):
        args = cli.parser().parse_args(["train", "--precision", precision, "--out", str(tmp_path / precision)])
        accuracy[precision] = cli.train(args)
    assert accuracy["fp32"] > 0.97
    assert accuracy["bf16"] >= accuracy["fp32"] - 0.005, accuracy
