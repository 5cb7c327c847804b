"""The module system: registration, traversal, modes, freezing, containers, state_dict."""

from collections import OrderedDict

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn


class TwoLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 8)
        self.bn = nn.BatchNorm1d(8)
        self.head = nn.Sequential(nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 3))
        self.scale = 2.0  # a plain attribute: not state

    def forward(self, x):
        return self.head(self.fc1(x)) * self.scale


def test_registration_and_traversal_order():
    model = TwoLayer()
    assert [n for n, _ in model.named_parameters()] == [
        "fc1.weight",
        "fc1.bias",
        "bn.weight",
        "bn.bias",
        "head.2.weight",
        "head.2.bias",
    ]
    assert [n for n, _ in model.named_buffers()] == ["bn.running_mean", "bn.running_var", "bn.num_batches_tracked"]
    assert [type(m).__name__ for m in model.children()] == ["Linear", "BatchNorm1d", "Sequential"]
    assert [n for n, _ in model.named_modules()] == ["", "fc1", "bn", "head", "head.0", "head.1", "head.2"]
    assert list(model.state_dict()) == [
        "fc1.weight",
        "fc1.bias",
        "bn.weight",
        "bn.bias",
        "bn.running_mean",
        "bn.running_var",
        "bn.num_batches_tracked",
        "head.2.weight",
        "head.2.bias",
    ]
    assert model.fc1.weight.requires_grad and isinstance(model.fc1.weight, nn.Parameter)
    assert not model.bn.running_mean.requires_grad


def test_reassignment_and_errors():
    model = TwoLayer()
    model.fc1 = nn.Linear(4, 8, bias=False)
    assert "fc1.bias" not in dict(model.named_parameters())
    with pytest.raises(TypeError, match="nn.Parameter"):
        model.fc1.weight = mg.zeros(8, 4)  # a plain Tensor cannot silently replace a Parameter
    model.extra = nn.Parameter(mg.ones(2))
    assert "extra" in dict(model.named_parameters())
    del model.extra
    assert "extra" not in dict(model.named_parameters())
    with pytest.raises(AttributeError, match="no attribute 'missing'"):
        _ = model.missing


def test_replacing_a_child_keeps_its_slot_as_in_pytorch():
    model = TwoLayer()
    model.fc1 = nn.Linear(4, 8)  # setattr on a registered child: same place, not moved last
    assert [n for n, _ in model.named_children()] == ["fc1", "bn", "head"]
    new_head = nn.Linear(8, 5)
    model.set_submodule("head.2", new_head)
    assert model.get_submodule("head.2") is new_head and model.head[2] is new_head
    assert [n for n, _ in model.named_parameters()][-2:] == ["head.2.weight", "head.2.bias"]
    assert model(mg.randn(2, 4)).shape == (2, 5)
    with pytest.raises(AttributeError, match="no sub-module 'missing'"):
        model.set_submodule("head.missing", nn.ReLU())
    with pytest.raises(TypeError, match="must be given a Module"):
        model.set_submodule("fc1", 3)
    torch = pytest.importorskip("torch")
    theirs = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU())
    theirs.set_submodule("0", torch.nn.Linear(2, 3))  # the same name and slot rule as ours
    assert list(dict(theirs.named_children())) == ["0", "1"]


def test_only_module_py_touches_the_registry():
    from pathlib import Path

    package = Path(mg.__file__).parent
    users = sorted(str(p.relative_to(package)) for p in package.rglob("*.py") if "._modules" in p.read_text())
    assert users == ["nn/module.py"], f"use setattr / set_submodule / add_module, not _modules: {users}"


def test_shared_parameter_listed_once():
    shared = nn.Linear(3, 3)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    assert len(list(model.parameters())) == 2


def test_train_eval_propagate_and_zero_grad_and_apply():
    model = TwoLayer()
    model.eval()
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())
    model.fc1.weight.grad = mg.ones(8, 4)
    model.zero_grad()
    assert model.fc1.weight.grad is None
    visited = []
    model.apply(lambda m: visited.append(type(m).__name__))
    assert visited == ["Linear", "BatchNorm1d", "ReLU", "Dropout", "Linear", "Sequential", "TwoLayer"]
    model.apply(lambda m: nn.init.zeros_(m.bias) if isinstance(m, nn.Linear) else None)
    assert not model.fc1.bias.numpy().any()


def test_freezing_a_submodule_skips_its_gradients():
    model = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 2))
    twin = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 2))
    twin.load_state_dict(model.state_dict())
    model[0].requires_grad_(False)
    x = mg.randn(3, 4)
    model(x).sum().backward()
    twin(x).sum().backward()
    assert model[0].weight.grad is None and model[0].bias.grad is None
    np.testing.assert_allclose(model[2].weight.grad.numpy(), twin[2].weight.grad.numpy())
    model[0].requires_grad_(True)
    assert all(p.requires_grad for p in model.parameters())


def test_sequential_indexing_slicing_append():
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert len(seq) == 3 and isinstance(seq[-1], nn.Linear) and isinstance(seq[1], nn.ReLU)
    head = seq[1:]
    assert isinstance(head, nn.Sequential) and len(head) == 2 and head[1] is seq[2]
    assert list(head.state_dict()) == ["2.weight", "2.bias"]  # slicing keeps PyTorch's keys
    seq.append(nn.Sigmoid())
    assert len(seq) == 4 and list(seq)[3].__class__ is nn.Sigmoid
    x = mg.randn(5, 2)
    np.testing.assert_allclose(seq(x).numpy(), seq[3](seq[2](seq[1](seq[0](x)))).numpy())
    with pytest.raises(IndexError, match="out of range"):
        seq[4]
    named = nn.Sequential(OrderedDict(fc=nn.Linear(2, 2), act=nn.Tanh()))
    assert list(named.state_dict()) == ["fc.weight", "fc.bias"]


def test_module_list_and_dict_register_parameters():
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    layers.append(nn.Linear(2, 1))
    assert len(layers) == 4 and len(list(layers.parameters())) == 8
    assert list(layers.state_dict())[-1] == "3.bias"
    heads = nn.ModuleDict({"a": nn.Linear(2, 1), "b": nn.Linear(2, 4)})
    heads["c"] = nn.Identity()
    assert list(heads) == ["a", "b", "c"] and "b" in heads and len(heads) == 3
    assert list(heads.state_dict()) == ["a.weight", "a.bias", "b.weight", "b.bias"]


def test_repr_reads_like_pytorch():
    text = repr(nn.Sequential(nn.Linear(2, 3), nn.Sequential(nn.ReLU())))
    assert text == (
        "Sequential(\n  (0): Linear(in_features=2, out_features=3, bias=True)\n"
        "  (1): Sequential(\n    (0): ReLU()\n  )\n)"
    )


def test_load_state_dict_round_trip_numpy_and_strict_errors():
    source, target = TwoLayer(), TwoLayer()
    state = {k: v.numpy() * 1.5 if v.dtype.kind == "f" else v.numpy() for k, v in source.state_dict().items()}
    weight_object = target.fc1.weight
    result = target.load_state_dict(state)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert target.fc1.weight is weight_object  # copied in place: optimisers keep their references
    np.testing.assert_array_equal(target.fc1.weight.numpy(), source.fc1.weight.numpy() * 1.5)

    broken = dict(state)
    del broken["bn.running_var"]
    broken["fc2.weight"] = np.zeros((1, 1), np.float32)
    broken["fc1.bias"] = np.zeros(7, np.float32)
    broken["head.2.weight"] = state["head.2.weight"].astype(np.float64)
    with pytest.raises(KeyError) as error:
        target.load_state_dict(broken)
    message = str(error.value)
    assert "missing keys: bn.running_var" in message and "unexpected keys: fc2.weight" in message
    assert "fc1.bias: checkpoint (7,) float32, model (8,) float32" in message
    assert "head.2.weight: checkpoint (3, 8) float64, model (3, 8) float32" in message
    np.testing.assert_array_equal(target.fc1.bias.numpy(), state["fc1.bias"])  # nothing was copied

    partial = {k: v for k, v in state.items() if k.startswith("fc1.")}
    result = target.load_state_dict(partial, strict=False)
    assert "bn.weight" in result.missing_keys and result.unexpected_keys == []


def test_to_double_keeps_parameter_objects():
    model = TwoLayer()
    weight = model.fc1.weight
    model.double()
    assert model.fc1.weight is weight and weight.dtype == np.float64
    assert model.bn.running_mean.dtype == np.float64 and model.bn.num_batches_tracked.dtype == np.int64


def test_state_dict_keys_match_pytorch():
    torch = pytest.importorskip("torch", reason="key comparison needs PyTorch")
    ours = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for (name, ours_value), theirs_value in zip(ours.state_dict().items(), theirs.state_dict().values()):
        assert ours_value.shape == tuple(theirs_value.shape), name
