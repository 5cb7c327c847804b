"""Layers without the convolution/normalisation kernels: Linear (fused GEMM op), activations,
Flatten, Identity — each against PyTorch with identical weights and by float64 gradcheck."""

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn
from minigrad.nn import functional as F

from harness import OpCase, check_op
from module_parity import check_module_parity, module_gradcheck, torch


def test_linear_functional_op():
    check_op(OpCase(F.linear, torch.nn.functional.linear, [(4, 5), (3, 5), (3,)]))
    check_op(OpCase(F.linear, torch.nn.functional.linear, [(2, 3, 5), (4, 5)]))  # batched, no bias


def test_linear_rejects_bad_shapes_before_computing():
    with pytest.raises(ValueError, match=r"input features \(6,\) do not match weight \(3, 5\)"):
        F.linear(mg.randn(2, 6), mg.randn(3, 5))
    with pytest.raises(ValueError, match="bias"):
        F.linear(mg.randn(2, 5), mg.randn(3, 5), mg.randn(4))
    with pytest.raises(TypeError, match="must both be float32, float64 or bfloat16"):
        F.linear(mg.randn(2, 5, dtype="float64"), mg.randn(3, 5))


@pytest.mark.parametrize("training", [True, False])
def test_linear_module_matches_pytorch(training):
    check_module_parity(
        nn.Linear(7, 5), torch.nn.Linear(7, 5), np.random.default_rng(1).standard_normal((6, 7)), training
    )
    check_module_parity(
        nn.Linear(7, 5, bias=False),
        torch.nn.Linear(7, 5, bias=False),
        np.random.default_rng(2).standard_normal((6, 7)),
        training,
    )


def test_linear_gradcheck():
    module_gradcheck(nn.Linear(4, 3), (5, 4))


ACTIVATIONS = [
    (nn.ReLU(), torch.nn.ReLU()),
    (nn.LeakyReLU(0.2), torch.nn.LeakyReLU(0.2)),
    (nn.Sigmoid(), torch.nn.Sigmoid()),
    (nn.Tanh(), torch.nn.Tanh()),
    (nn.Softmax(dim=1), torch.nn.Softmax(dim=1)),
    (nn.LogSoftmax(dim=-1), torch.nn.LogSoftmax(dim=-1)),
    (nn.Flatten(), torch.nn.Flatten()),
    (nn.Identity(), torch.nn.Identity()),
]


@pytest.mark.parametrize("ours,theirs", ACTIVATIONS, ids=lambda m: type(m).__name__)
def test_activation_and_shape_modules_match_pytorch(ours, theirs):
    x = np.random.default_rng(3).standard_normal((4, 3, 2, 2))
    x = np.where(np.abs(x) < 1e-3, 0.5, x)  # away from relu's kink
    for training in (True, False):
        check_module_parity(ours, theirs, x, training)
    module_gradcheck(ours, (2, 3, 2, 2), seed=5)


def test_mlp_matches_pytorch_end_to_end():
    ours = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3))
    theirs = torch.nn.Sequential(
        torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3)
    )
    check_module_parity(ours, theirs, np.random.default_rng(4).standard_normal((10, 6)))
