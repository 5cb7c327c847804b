"""PyTorch calls mean the same in minigrad: the same values, shapes, dtypes and gradients from
the same inputs, and errors where PyTorch raises. (Issue: "a PyTorch user feels at home".)"""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn

torch = pytest.importorskip("torch")


def pair(shape, seed=0, dtype=np.float32):
    """The same random values as a minigrad tensor and a torch tensor, both requiring grad."""
    values = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    return mg.tensor(values, requires_grad=True), torch.tensor(values, requires_grad=True)


def assert_close(ours, theirs, rtol=1e-5, atol=1e-6):
    np.testing.assert_allclose(
        np.asarray(ours.data if hasattr(ours, "data") else ours), theirs.detach().numpy(), rtol=rtol, atol=atol
    )


# ------------------------------------------------------------ 1. max/min/sort/topk with a dim
@pytest.mark.parametrize("name", ["max", "min"])
@pytest.mark.parametrize("keepdim", [False, True])
def test_max_and_min_with_a_dim_return_values_and_indices(name, keepdim):
    x, tx = pair((4, 5, 3))
    values, indices = getattr(mg, name)(x, 1, keepdim=keepdim)
    want = getattr(torch, name)(tx, 1, keepdim=keepdim)
    assert_close(values, want.values)
    np.testing.assert_array_equal(indices.numpy(), want.indices.numpy())
    assert indices.dtype == np.int64 and values.shape == tuple(want.values.shape)
    assert getattr(mg, name)(x, dim=2).values.shape == (4, 5)  # named fields
    values.sum().backward()
    want.values.sum().backward()
    assert_close(x.grad, tx.grad)
    # the method, the whole-tensor form and the element-wise form
    assert_close(getattr(x, name)(0)[0], getattr(tx, name)(0)[0])
    assert_close(getattr(mg, name)(x), getattr(torch, name)(tx))
    other, tother = pair((4, 5, 3), seed=1)
    assert_close(getattr(mg, name)(x, other), getattr(torch, name)(tx, tother))


def test_a_first_dimension_of_two_no_longer_unpacks_rows():
    """The silently wrong case of the issue: two rows of values unpacked as (values, indices)."""
    x = mg.tensor([[1.0, 5.0, 2.0], [7.0, 0.0, 3.0]])
    values, indices = mg.max(x, 1)
    assert values.tolist() == [5.0, 7.0] and indices.tolist() == [1, 0]


def test_numpy_style_axis_keeps_returning_the_values():
    x = mg.tensor([[1.0, 5.0], [7.0, 0.0]])
    assert x.max(axis=1).tolist() == [5.0, 7.0] and x.min(axis=0, keepdims=True).shape == (1, 2)


@pytest.mark.parametrize("descending", [False, True])
def test_sort_matches_torch_with_gradients(descending):
    x, tx = pair((3, 6))
    values, indices = mg.sort(x, dim=1, descending=descending)
    want = torch.sort(tx, dim=1, descending=descending, stable=True)
    assert_close(values, want.values)
    np.testing.assert_array_equal(indices.numpy(), want.indices.numpy())
    (values * mg.arange(6, dtype=np.float32)).sum().backward()
    (want.values * torch.arange(6)).sum().backward()
    assert_close(x.grad, tx.grad)


@pytest.mark.parametrize("largest", [True, False])
def test_topk_matches_torch_with_gradients(largest):
    x, tx = pair((4, 7))
    values, indices = x.topk(3, dim=1, largest=largest)
    want = torch.topk(tx, 3, dim=1, largest=largest)
    assert_close(values, want.values)
    np.testing.assert_array_equal(indices.numpy(), want.indices.numpy())
    values.sum().backward()
    want.values.sum().backward()
    assert_close(x.grad, tx.grad)
    with pytest.raises(RuntimeError, match="out of range"):
        x.topk(8, dim=1)


@pytest.mark.parametrize("name", ["argmax", "argmin"])
def test_argmax_and_argmin_accept_keepdim(name):
    x, tx = pair((3, 4, 5))
    for dim in (0, 2):
        ours, theirs = getattr(x, name)(dim, keepdim=True), getattr(tx, name)(dim, keepdim=True)
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    np.testing.assert_array_equal(getattr(mg, name)(x).numpy(), getattr(torch, name)(tx).numpy())


# --------------------------------------------------------------------- 2. sizes
def test_size_numel_dim():
    x, tx = pair((2, 3, 4))
    assert x.size() == tuple(tx.size()) and x.size(1) == tx.size(1) and x.size(-1) == 4
    assert x.numel() == tx.numel() == 24 and x.nelement() == 24 and x.dim() == tx.dim() == 3


# -------------------------------------------------------------------- 3. devices
def test_the_cpu_device_is_accepted_everywhere():
    device = mg.device("cuda" if mg.cuda.is_available() else "cpu")
    assert str(device) == "cpu" and device == "cpu" and mg.device("cpu:0").index == 0
    x = mg.randn(2, 3)
    assert x.to("cpu") is x and x.to(device) is x and x.cpu() is x and x.device == device
    assert x.to(device, mg.float64 if hasattr(mg, "float64") else np.float64).dtype == np.float64
    assert x.to(dtype=np.float64, device="cpu").dtype == np.float64
    assert x.to(mg.zeros(1, dtype=np.float64)).dtype == np.float64
    model = nn.Linear(3, 2)
    assert model.to(device) is model and model.cpu() is model
    model.to("cpu", np.float64)
    assert model.weight.dtype == np.float64


@pytest.mark.parametrize("name", ["cuda", "cuda:0", "mps"])
def test_any_other_device_is_a_clear_error(name):
    with pytest.raises(RuntimeError, match=f"minigrad runs on the CPU only: device '{name}' is not available"):
        mg.device(name)
    with pytest.raises(RuntimeError, match="CPU only"):
        mg.randn(2).to(name)
    with pytest.raises(RuntimeError, match="CPU only"):
        nn.Linear(2, 2).to(name)


# -------------------------------------------------------------------- 4. loss modules
def loss_inputs(kind, seed=0):
    rng = np.random.default_rng(seed)
    if kind == "classes":
        logits = rng.standard_normal((6, 4)).astype(np.float32)
        target = np.array([0, 3, 1, 1, 2, 3])
        return logits, target
    if kind == "log_probs":
        logits = rng.standard_normal((6, 4)).astype(np.float32)
        log_probs = logits - np.log(np.exp(logits).sum(1, keepdims=True))
        return log_probs.astype(np.float32), np.array([0, 3, 1, 1, 2, 3])
    if kind == "probabilities":
        return rng.uniform(0.05, 0.95, (5, 3)).astype(np.float32), (rng.uniform(size=(5, 3)) > 0.5).astype(np.float32)
    if kind == "binary_logits":
        return rng.standard_normal((5, 3)).astype(np.float32) * 3, (rng.uniform(size=(5, 3)) > 0.5).astype(np.float32)
    if kind == "kl":
        x = rng.standard_normal((4, 5)).astype(np.float32)
        log_q = x - np.log(np.exp(x).sum(1, keepdims=True))
        p = rng.uniform(size=(4, 5)).astype(np.float32)
        p[0, 0] = 0.0
        return log_q.astype(np.float32), (p / p.sum(1, keepdims=True)).astype(np.float32)
    x = rng.standard_normal((5, 3)).astype(np.float32) * 2
    return x, rng.standard_normal((5, 3)).astype(np.float32) * 2


WEIGHT = np.array([1.0, 2.0, 0.5, 3.0], np.float32)
LOSSES = [
    ("CrossEntropyLoss", "classes", {}),
    ("CrossEntropyLoss", "classes", {"weight": WEIGHT}),
    ("CrossEntropyLoss", "classes", {"ignore_index": 3}),
    ("CrossEntropyLoss", "classes", {"label_smoothing": 0.1}),
    ("CrossEntropyLoss", "classes", {"weight": WEIGHT, "ignore_index": 1, "label_smoothing": 0.2}),
    ("NLLLoss", "log_probs", {}),
    ("NLLLoss", "log_probs", {"weight": WEIGHT, "ignore_index": 0}),
    ("MSELoss", "regression", {}),
    ("L1Loss", "regression", {}),
    ("SmoothL1Loss", "regression", {}),
    ("SmoothL1Loss", "regression", {"beta": 0.5}),
    ("HuberLoss", "regression", {"delta": 0.7}),
    ("BCELoss", "probabilities", {}),
    ("BCELoss", "probabilities", {"weight": np.array([1.0, 0.5, 2.0], np.float32)}),
    ("BCEWithLogitsLoss", "binary_logits", {}),
    ("BCEWithLogitsLoss", "binary_logits", {"pos_weight": np.array([2.0, 0.5, 1.0], np.float32)}),
    ("BCEWithLogitsLoss", "binary_logits", {"weight": np.array([1.0, 0.5, 2.0], np.float32)}),
    ("KLDivLoss", "kl", {}),
    ("KLDivLoss", "kl", {"reduction": "batchmean"}),
    ("KLDivLoss", "kl", {"reduction": "sum", "log_target": True}),
]


# Each case under every reduction, or under the one it names.
LOSS_CASES = [
    (name, kind, {k: v for k, v in options.items() if k != "reduction"}, reduction)
    for name, kind, options in LOSSES
    for reduction in ([options["reduction"]] if "reduction" in options else ["mean", "sum", "none"])
]


@pytest.mark.parametrize(
    "name, kind, options, reduction", LOSS_CASES, ids=[f"{n}-{sorted(o)}-{r}" for n, _, o, r in LOSS_CASES]
)
def test_loss_modules_match_torch(name, kind, options, reduction):
    x_np, target_np = loss_inputs(kind)
    if options.get("log_target"):
        target_np = np.log(np.clip(target_np, 1e-6, None)).astype(np.float32)
    ours_options = dict(options)
    theirs_options = {k: (torch.tensor(v) if isinstance(v, np.ndarray) else v) for k, v in options.items()}
    x, tx = mg.tensor(x_np, requires_grad=True), torch.tensor(x_np, requires_grad=True)
    target = mg.tensor(target_np)
    ttarget = torch.tensor(target_np)
    ours = getattr(nn, name)(reduction=reduction, **ours_options)(x, target)
    theirs = getattr(torch.nn, name)(reduction=reduction, **theirs_options)(tx, ttarget)
    assert_close(ours, theirs, rtol=2e-5, atol=2e-6)
    ours.sum().backward()
    theirs.sum().backward()
    assert_close(x.grad, tx.grad, rtol=2e-5, atol=2e-6)


def test_loss_modules_refuse_an_unknown_reduction():
    with pytest.raises(ValueError, match="reduction must be"):
        nn.MSELoss(reduction="avg")


# ------------------------------------------------------------------- 6. tensor protocol
def test_integer_tensors_index_lists_and_tensors_format():
    labels = ["cat", "dog", "bird"]
    assert labels[mg.tensor(2)] == "bird"
    assert f"{mg.tensor(1.23456):.3f}" == "1.235" and f"{mg.tensor(3)}" == "tensor(3)"
    with pytest.raises(TypeError, match="integer tensors of a single element"):
        labels[mg.tensor(1.0)]


@pytest.mark.parametrize("name", ["eq", "ne", "lt", "le", "gt", "ge"])
def test_comparison_methods(name):
    x, tx = pair((3, 4))
    y, ty = pair((3, 4), seed=1)
    ours, theirs = getattr(x, name)(y), getattr(tx, name)(ty)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    assert getattr(x, name)(0.0).sum().item() == getattr(tx, name)(0.0).sum().item()


def test_shape_and_dtype_helpers_match_torch():
    x, tx = pair((4, 6))
    y = mg.zeros(2, 12, dtype=np.float64)
    assert x.view_as(y).shape == (2, 12) and x.reshape_as(y).shape == (2, 12)
    assert x.type_as(y).dtype == np.float64
    assert x.t().shape == tuple(tx.t().shape) and mg.tensor([1.0, 2.0]).t().shape == (2,)
    assert [p.shape for p in x.chunk(3, 1)] == [tuple(p.shape) for p in tx.chunk(3, 1)]
    assert [p.shape for p in x.chunk(4, 1)] == [tuple(p.shape) for p in tx.chunk(4, 1)]
    assert [p.shape for p in x.split(4, 1)] == [tuple(p.shape) for p in tx.split(4, 1)]
    assert [p.shape for p in x.split([1, 3], 0)] == [tuple(p.shape) for p in tx.split([1, 3], 0)]
    assert mg.flatten(mg.zeros(2, 3, 4), 1).shape == (2, 12)
    assert x.long().dtype == np.int64 and x.int().dtype == np.int32 and x.bool().dtype == np.bool_


def test_clone_gather_and_masked_fill_carry_gradients_like_torch():
    x, tx = pair((3, 4))
    index = np.array([[0, 3], [1, 1], [2, 0]])
    ours = x.clone().gather(1, mg.tensor(index)).sum() + x.masked_fill(x > 0, 0.0).sum()
    theirs = tx.clone().gather(1, torch.tensor(index)).sum() + tx.masked_fill(tx > 0, 0.0).sum()
    assert_close(ours, theirs)
    ours.backward()
    theirs.backward()
    assert_close(x.grad, tx.grad)


def test_scatter_in_place_matches_torch():
    index = np.array([[0, 2], [1, 0]])
    ours = mg.zeros(2, 3).scatter_(1, mg.tensor(index), 1.5)
    theirs = torch.zeros(2, 3).scatter_(1, torch.tensor(index), 1.5)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    src = np.arange(4, dtype=np.float32).reshape(2, 2)
    ours = mg.zeros(2, 3).scatter_(1, mg.tensor(index), mg.tensor(src))
    theirs = torch.zeros(2, 3).scatter_(1, torch.tensor(index), torch.tensor(src))
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_detach_in_place_leaves_the_tape():
    x = mg.randn(3, requires_grad=True)
    y = (x * 2).detach_()
    assert not y.requires_grad and y.is_leaf


# ---------------------------------------------------------------- 5. data, as torchvision
def test_to_tensor_and_normalize_match_torchvision_semantics():
    from minigrad.data import transforms as T

    images = np.random.default_rng(0).integers(0, 256, (5, 6, 7, 3), dtype=np.uint8)
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    ours = T.Compose([T.ToTensor(), T.Normalize(mean, std)])(images)
    theirs = (
        torch.tensor(images).permute(0, 3, 1, 2).float() / 255 - torch.tensor(mean)[:, None, None]
    ) / torch.tensor(std)[:, None, None]
    np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-6, atol=1e-6)
    assert T.ToTensor()(images[0, :, :, 0][None]).shape == (1, 1, 6, 7)  # (H, W) greyscale
    floats = np.zeros((2, 1, 4, 4), np.float32)
    assert T.ToTensor()(floats) is not None and T.ToTensor()(floats).shape == (2, 1, 4, 4)  # CHW floats pass
    with pytest.raises(ValueError, match="Normalize"):
        T.Normalize((0.5, 0.5), (1.0,))


def test_datasets_take_transform_and_target_transform_per_sample_and_per_batch():
    from minigrad.data import transforms as T
    from minigrad.utils.data import DataLoader, TensorDataset

    images = np.random.default_rng(1).integers(0, 256, (6, 4, 4, 3), dtype=np.uint8)
    dataset = TensorDataset(images, np.arange(6), transform=T.ToTensor(), target_transform=lambda y: y + 10)
    x, y = dataset[2]
    assert x.shape == (3, 4, 4) and x.dtype == np.float32 and y == 12
    np.testing.assert_allclose(x, images[2].transpose(2, 0, 1) / 255, rtol=1e-6)
    batch = next(iter(DataLoader(dataset, batch_size=4, pin_memory=True, persistent_workers=False, prefetch_factor=3)))
    assert batch[0].shape == (4, 3, 4, 4) and batch[1].tolist() == [10, 11, 12, 13]
    digits = pytest.importorskip("sklearn") and mg.data.Digits(transform=T.Normalize((0.5,), (0.25,)))
    raw = mg.data.Digits()
    np.testing.assert_allclose(digits[0][0], (raw[0][0] - 0.5) / 0.25, rtol=1e-6)


def test_submodules_are_attributes_and_the_version_prints(capsys):
    import minigrad.utils.data as utils_data

    assert mg.data.DataLoader is utils_data.DataLoader and mg.train.Trainer is not None
    assert mg.adversarial.__name__ == "minigrad.strategies.adversarial"
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        mg.nonexistent  # noqa: B018
    from minigrad import cli

    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"minigrad {mg.__version__}"


# ------------------------------------------------------------- 7. autograd inspection
def test_grad_fn_walks_the_graph_like_torch():
    x, tx = pair((3,))
    ours, theirs = (x * 2).exp().sum(), (tx * 2).exp().sum()

    def walk(fn):
        name = fn.name().rstrip("0").split("::")[-1] if fn is not None else None  # torch::autograd::AccumulateGrad
        return [] if fn is None else [name] + [n for f, _ in fn.next_functions for n in walk(f)]

    assert walk(ours.grad_fn) == walk(theirs.grad_fn) == ["SumBackward", "ExpBackward", "MulBackward", "AccumulateGrad"]
    assert x.grad_fn is None and x.is_leaf


def test_retain_grad_keeps_a_non_leaf_gradient():
    x, tx = pair((4,))
    y, ty = x.tanh(), tx.tanh()
    y.retain_grad()
    ty.retain_grad()
    (y * y).sum().backward()
    (ty * ty).sum().backward()
    assert_close(y.grad, ty.grad)
    assert_close(x.grad, tx.grad)


# ----------------------------------------------------- scripts written as for PyTorch
SCRIPT_HEAD = """
import numpy as np
import minigrad as torch
import minigrad.nn as nn
import minigrad.nn.functional as F
import minigrad.optim as optim
from minigrad.optim.lr_scheduler import StepLR
from minigrad.utils.data import DataLoader, TensorDataset
torch.manual_seed(0)
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
"""

MNIST_STYLE = """
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, 1)
        self.conv2 = nn.Conv2d(8, 16, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.fc1 = nn.Linear(16 * 5 * 5, 32)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        return F.log_softmax(self.fc2(x), dim=1)

images = torch.randn(256, 1, 14, 14)
labels = (images.mean(dim=(1, 2, 3)) > 0).long() + 2 * (images[:, :, :7].mean(dim=(1, 2, 3)) > 0).long()
loader = DataLoader(TensorDataset(images, labels), batch_size=32, shuffle=True)
model = Net().to(device)
optimizer = optim.Adadelta(model.parameters(), lr=1.0)
scheduler = StepLR(optimizer, step_size=1, gamma=0.7)
losses = []
for epoch in range(1, 4):
    model.train()
    for batch_idx, (data, target) in enumerate(loader):
        data, target = data.to(device), target.to(device)
        optimizer.zero_grad()
        output = model(data)
        loss = F.nll_loss(output, target)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    scheduler.step()
model.eval()
correct = 0
with torch.no_grad():
    for data, target in loader:
        pred = model(data).argmax(dim=1, keepdim=True)
        correct += pred.eq(target.view_as(pred)).sum().item()
print(f"{np.mean(losses[:8]):.4f} {np.mean(losses[-8:]):.4f} {correct / len(loader.dataset):.3f}")
"""

TUTORIAL_NET = """
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.fc2 = nn.Linear(16, 4)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))

net = Net()
params = list(net.parameters())
assert len(params) == 4 and params[0].size() == (16, 8)
input = torch.randn(10, 8)
target = torch.randn(10, 4)
criterion = nn.MSELoss()
optimizer = optim.SGD(net.parameters(), lr=0.1)
first = None
for i in range(60):
    optimizer.zero_grad()
    loss = criterion(net(input), target)
    first = loss.item() if first is None else first
    loss.backward()
    optimizer.step()
print(f"{first:.4f} {loss.item():.4f} {loss.grad_fn.name()}")
"""

CIFAR_STYLE = """
classes = ("plane", "car", "bird", "cat")
inputs = torch.randn(200, 3, 8, 8)
labels = inputs[:, 0].mean(dim=(1, 2)).gt(0).long() * 2 + inputs[:, 1].mean(dim=(1, 2)).gt(0).long()
trainloader = DataLoader(TensorDataset(inputs, labels), batch_size=20, shuffle=True, num_workers=0)

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 3)
        self.pool = nn.MaxPool2d(2, 2)
        self.fc1 = nn.Linear(6 * 3 * 3, 32)
        self.fc2 = nn.Linear(32, 4)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = torch.flatten(x, 1)
        return self.fc2(F.relu(self.fc1(x)))

net = Net()
criterion = nn.CrossEntropyLoss()
optimizer = optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
for epoch in range(6):
    running_loss = 0.0
    for i, data in enumerate(trainloader, 0):
        inputs_, labels_ = data
        optimizer.zero_grad()
        loss = criterion(net(inputs_), labels_)
        loss.backward()
        optimizer.step()
        running_loss += loss.item()
correct_pred = {classname: 0 for classname in classes}
total_pred = {classname: 0 for classname in classes}
with torch.no_grad():
    for data in trainloader:
        images, labels_ = data
        outputs = net(images)
        _, predictions = torch.max(outputs, 1)
        for label, prediction in zip(labels_, predictions):
            if label == prediction:
                correct_pred[classes[label]] += 1
            total_pred[classes[label]] += 1
accuracy = sum(correct_pred.values()) / sum(total_pred.values())
print(f"{running_loss / len(trainloader):.4f} {accuracy:.3f}")
"""


def run_script(body: str) -> list[str]:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(SCRIPT_HEAD + body, "<script>", "exec"), {"__name__": "__main__"})
    return out.getvalue().split()


def test_a_pytorch_style_mnist_script_trains_with_only_the_imports_changed():
    first, last, accuracy = map(float, run_script(MNIST_STYLE))
    assert last < first and accuracy > 0.45, (first, last, accuracy)  # 4 classes: chance is 0.25


def test_the_beginner_tutorial_net_trains_with_mse_loss():
    first, last, name = run_script(TUTORIAL_NET)
    assert float(last) < 0.8 * float(first) and name.endswith("Backward"), (first, last, name)


def test_a_cifar_style_loop_with_torch_max_and_per_class_accuracy():
    loss, accuracy = map(float, run_script(CIFAR_STYLE))
    assert accuracy > 0.7, (loss, accuracy)


# ------------------------------------------------ 9. save/load what PyTorch scripts pass
def test_save_and_load_a_checkpoint_dict_with_optimiser_state(tmp_path):
    mg.manual_seed(0)
    model = nn.Linear(3, 2)
    optimizer = mg.optim.Adam(model.parameters(), lr=0.01)
    x = mg.randn(8, 3)
    for _ in range(3):
        optimizer.zero_grad()
        model(x).pow(2).mean().backward() if hasattr(mg.Tensor, "pow") else (model(x) ** 2).mean().backward()
        optimizer.step()
    checkpoint = {
        "epoch": 3,
        "model_state_dict": model.state_dict(),
        "optimizer_state_dict": optimizer.state_dict(),
        "loss": 0.25,
    }
    mg.save(checkpoint, tmp_path / "checkpoint.pt")
    loaded = mg.load(tmp_path / "checkpoint.pt")
    assert loaded["epoch"] == 3 and loaded["loss"] == 0.25
    restored = nn.Linear(3, 2)
    restored.load_state_dict(loaded["model_state_dict"])
    resumed = mg.optim.Adam(restored.parameters(), lr=0.5)
    resumed.load_state_dict(loaded["optimizer_state_dict"])
    for opt, net in ((optimizer, model), (resumed, restored)):  # one more step each: the same numbers
        opt.zero_grad()
        (net(x) ** 2).mean().backward()
        opt.step()
    np.testing.assert_array_equal(restored.weight.numpy(), model.weight.numpy())
    mg.save(optimizer.state_dict(), tmp_path / "optimizer.pt")
    assert set(mg.load(tmp_path / "optimizer.pt")["state"]) == {0, 1}  # integer keys come back integers


def test_a_flat_state_dict_stays_a_plain_safetensors_file(tmp_path):
    model = nn.Linear(3, 2)
    mg.save(model.state_dict(), tmp_path / "model.safetensors")
    assert mg.io.load_metadata(tmp_path / "model.safetensors") == {}
    assert set(mg.load(tmp_path / "model.safetensors")) == {"weight", "bias"}


def test_objects_the_format_cannot_hold_are_refused_before_writing(tmp_path):
    with pytest.raises(TypeError, match="cannot store set"):
        mg.save({"model": {1, 2}}, tmp_path / "bad.pt")
    assert not (tmp_path / "bad.pt").exists()


# ------------------------------------------- 7. in-place arithmetic on a non-leaf tensor
def test_in_place_arithmetic_on_a_non_leaf_is_recorded_like_torch():
    x, tx = pair((4,))
    w, tw = pair((4,), seed=1)
    y, ty = x * w, tx * tw
    y += 1.5
    ty += 1.5
    y *= w
    ty *= tw
    y.sub_(x)
    ty.sub_(tx)
    assert_close(y, ty)
    (y * y).sum().backward()
    (ty * ty).sum().backward()
    assert_close(x.grad, tx.grad)
    assert_close(w.grad, tw.grad)


def assert_refused_both_ways(make):
    """make(lib, leaf) builds a loss, changing a saved value in place on the way: both libraries
    refuse its backward."""
    x, tx = pair((3,))
    with pytest.raises(RuntimeError, match="modified in place"):
        make(mg, x).backward()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        make(torch, tx).backward()


def test_changing_an_output_its_op_saved_is_refused_at_backward_like_torch():
    def make(lib, leaf):
        y = lib.exp(leaf)  # exp's backward reads its output
        y += 1
        return y.sum()

    assert_refused_both_ways(make)


def test_changing_an_input_a_later_op_saved_is_refused_at_backward_like_torch():
    def make(lib, leaf):
        y = leaf * 2
        z = y * y  # mul's backward reads its inputs
        y += 1
        return z.sum()

    assert_refused_both_ways(make)


def test_in_place_on_a_view_that_requires_grad_is_refused():
    y = mg.randn(3, 2, requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="in-place change of a view"):
        row = y[0]
        row += 1


def test_in_place_on_a_leaf_that_requires_grad_is_refused_like_torch():
    x, tx = pair((3,))
    with pytest.raises(RuntimeError, match="in-place change of a tensor that requires grad"):
        x += 1
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        tx += 1
    with mg.no_grad():
        x += 1  # allowed without recording, as under torch.no_grad()


# ------------------------------------------------------------------ 8. p.data
def test_manual_updates_through_p_data_match_torch():
    """The pre-optimiser idiom: p.data.add_(p.grad.data, alpha=-lr), p.data.copy_, zero_, clamp_."""
    weights = np.random.default_rng(4).standard_normal((3, 5)).astype(np.float32)
    x_np = np.random.default_rng(5).standard_normal((8, 5)).astype(np.float32)
    ours, theirs = nn.Linear(5, 3), torch.nn.Linear(5, 3)
    for model, lib in ((ours, mg), (theirs, torch)):
        with lib.no_grad():
            model.weight.data.copy_(lib.tensor(weights))
            model.bias.data.zero_()
        for _ in range(3):
            model.zero_grad() if lib is torch else [setattr(p, "grad", None) for p in model.parameters()]
            (model(lib.tensor(x_np)) ** 2).mean().backward()
            for p in model.parameters():
                p.data.add_(p.grad.data, alpha=-0.1)
        model.weight.data.clamp_(-0.5, 0.5)
    assert_close(ours.weight, theirs.weight)
    assert_close(ours.bias, theirs.bias)
    assert ours.weight.data.mul_(2) is ours.weight.data  # in place, returns itself
    assert type(ours.weight.data + 1) is np.ndarray  # results are plain arrays
    drawn = nn.Linear(50, 40).weight
    drawn.data.normal_(0.0, 0.02)
    assert abs(float(drawn.data.std()) - 0.02) < 0.002


def test_chunk_and_split_refuse_sizes_that_cannot_split():
    x = mg.randn(4, 6)
    for bad in (lambda: x.chunk(0), lambda: x.chunk(-2, 1), lambda: x.split(0, 1)):
        with pytest.raises(ValueError, match="must be a positive integer"):
            bad()
    with pytest.raises(RuntimeError, match="add up to 6"):
        x.split([2, 5, -1], 1)


@pytest.mark.parametrize(
    "structure",
    [
        '{"tensor": "missing"}',
        '{"dict": 5}',
        '{"dict": [[1, 2, 3]]}',
        '{"float": "not a number"}',
        "[" * 5000 + "]" * 5000,  # nested past any parser's depth
        "not json",
    ],
)
def test_a_crafted_checkpoint_structure_is_a_clear_error(tmp_path, structure):
    from minigrad.io import _STRUCTURE_KEY, CorruptFileError, _save_flat

    path = tmp_path / "crafted.pt"
    _save_flat({"w": np.zeros(2, np.float32)}, path, {_STRUCTURE_KEY: structure})
    with pytest.raises(CorruptFileError, match="structure does not match"):
        mg.load(path)
