"""The model builders against PyTorch twins, and PyTorch checkpoints (written by the
safetensors package) loading into them with strict=True."""

import numpy as np
import pytest

import minigrad as mg
from minigrad import models

import torch_twins
from module_parity import check_module_parity, torch


def count(parameters):
    return sum(int(np.prod(p.shape)) for p in parameters)


def test_lenet5_matches_pytorch():
    ours, theirs = models.lenet5(), torch_twins.lenet5()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    x = np.random.default_rng(0).standard_normal((4, 1, 28, 28))
    check_module_parity(ours, theirs, x, training=True)
    assert ours(mg.randn(2, 1, 28, 28)).shape == (2, 10)


def test_resnet8_matches_pytorch_in_training_and_eval():
    ours, theirs = models.resnet8(), torch_twins.resnet8()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    x = np.random.default_rng(0).standard_normal((4, 3, 32, 32))
    check_module_parity(ours, theirs, x, training=True, steps=2, atol=2e-5)
    check_module_parity(ours, theirs, x, training=False, atol=2e-5)


def test_resnet20_has_the_reference_size():
    ours, theirs = models.resnet20(), torch_twins.ResNet(3)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert count(ours.parameters()) == count(theirs.parameters()) == 272_474  # the paper's 0.27M
    assert ours(mg.randn(2, 3, 32, 32)).shape == (2, 10)


def test_mlp_builder_layout():
    mlp = models.mlp([784, 512, 256, 10], batchnorm=True, dropout=0.5)
    assert [type(m).__name__ for m in mlp] == ["Linear", "BatchNorm1d", "ReLU", "Dropout"] * 2 + ["Linear"]
    assert [type(m).__name__ for m in models.mlp([3, 4, 2])] == ["Linear", "ReLU", "Linear"]
    theirs = torch_twins.mlp([784, 512, 256, 10], batchnorm=True, dropout=0.5)
    assert [type(m).__name__ for m in theirs] == [type(m).__name__ for m in mlp]
    check_module_parity(mlp, theirs, np.random.default_rng(0).standard_normal((16, 784)), training=False)


@pytest.mark.parametrize("name", ["lenet5", "resnet8"])
def test_pytorch_checkpoint_loads_with_strict_keys(tmp_path, name):
    st_torch = pytest.importorskip(
        "safetensors.torch",
        reason="writing a PyTorch checkpoint needs the safetensors package (pip install safetensors)",
    )
    theirs = torch_twins.lenet5() if name == "lenet5" else torch_twins.resnet8()
    shape = (3, 1, 28, 28) if name == "lenet5" else (3, 3, 32, 32)
    theirs.train()
    theirs(torch.randn(8, *shape[1:]))  # move BatchNorm running statistics off their defaults
    theirs.eval()
    st_torch.save_file(theirs.state_dict(), str(tmp_path / "pretrained.safetensors"))
    ours = getattr(models, name)()
    ours.load_state_dict(mg.load(tmp_path / "pretrained.safetensors"), strict=True)
    ours.eval()
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    with torch.no_grad():
        expected = theirs(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours(mg.tensor(x)).numpy(), expected, atol=2e-5, rtol=1e-4)
