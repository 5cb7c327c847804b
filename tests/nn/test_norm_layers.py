"""Normalisation layers against PyTorch (train and eval, running statistics after several
steps), float64 gradchecks, and the GroupNorm equivalences."""

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn

from module_parity import check_module_parity, module_gradcheck, torch

T = torch.nn


def x_of(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape) * 2 + 0.5


@pytest.mark.parametrize(
    "ours,theirs,shape",
    [
        (nn.BatchNorm1d(5), T.BatchNorm1d(5), (8, 5)),
        (nn.BatchNorm1d(5), T.BatchNorm1d(5), (4, 5, 3)),
        (nn.BatchNorm2d(3), T.BatchNorm2d(3), (4, 3, 5, 5)),
        (nn.BatchNorm2d(3, momentum=None), T.BatchNorm2d(3, momentum=None), (4, 3, 5, 5)),
        (nn.BatchNorm2d(3, momentum=0.3, eps=1e-3), T.BatchNorm2d(3, momentum=0.3, eps=1e-3), (4, 3, 5, 5)),
        (nn.BatchNorm2d(3, affine=False), T.BatchNorm2d(3, affine=False), (4, 3, 5, 5)),
        (nn.BatchNorm2d(3, track_running_stats=False), T.BatchNorm2d(3, track_running_stats=False), (4, 3, 5, 5)),
    ],
    ids=["bn1d", "bn1d-3d", "bn2d", "bn2d-cumulative", "bn2d-momentum-eps", "bn2d-no-affine", "bn2d-no-tracking"],
)
def test_batch_norm_matches_pytorch_over_several_steps(ours, theirs, shape):
    with torch.no_grad():  # non-trivial affine parameters
        for p in theirs.parameters():
            p.copy_(torch.randn(p.shape))
    check_module_parity(ours, theirs, x_of(*shape), training=True, steps=4)  # running stats compared too
    check_module_parity(ours, theirs, x_of(*shape, seed=1), training=False)


@pytest.mark.parametrize(
    "ours,theirs,shape",
    [
        (nn.LayerNorm(6), T.LayerNorm(6), (4, 6)),
        (nn.LayerNorm((3, 4, 4)), T.LayerNorm((3, 4, 4)), (2, 3, 4, 4)),
        (nn.GroupNorm(2, 4), T.GroupNorm(2, 4), (3, 4, 3, 3)),
        (nn.InstanceNorm2d(3), T.InstanceNorm2d(3), (2, 3, 4, 4)),
        (
            nn.InstanceNorm2d(3, affine=True, track_running_stats=True),
            T.InstanceNorm2d(3, affine=True, track_running_stats=True),
            (2, 3, 4, 4),
        ),
    ],
    ids=["ln-1d", "ln-chw", "gn", "in", "in-affine-tracking"],
)
def test_per_sample_norms_match_pytorch(ours, theirs, shape):
    with torch.no_grad():
        for p in theirs.parameters():
            p.copy_(torch.randn(p.shape))
    check_module_parity(ours, theirs, x_of(*shape), training=True, steps=3)
    check_module_parity(ours, theirs, x_of(*shape, seed=1), training=False)


@pytest.mark.parametrize(
    "module,shape",
    [
        (nn.BatchNorm1d(3), (5, 3)),
        (nn.BatchNorm2d(2), (3, 2, 3, 3)),
        (nn.LayerNorm((2, 3)), (3, 2, 3)),
        (nn.GroupNorm(2, 4), (2, 4, 2, 2)),
        (nn.InstanceNorm2d(2, affine=True), (2, 2, 3, 3)),
    ],
    ids=["bn1d", "bn2d", "ln", "gn", "in"],
)
def test_norm_layers_gradcheck(module, shape):
    for p in module.parameters():
        nn.init.uniform_(p, 0.5, 1.5)
    module_gradcheck(module, shape)


def test_group_norm_with_one_group_is_layer_norm_over_chw():
    x = mg.tensor(x_of(2, 4, 3, 3))
    np.testing.assert_allclose(nn.GroupNorm(1, 4)(x).numpy(), nn.LayerNorm((4, 3, 3))(x).numpy(), atol=1e-5)


def test_group_norm_with_one_group_per_channel_is_instance_norm():
    gn, inorm = nn.GroupNorm(4, 4), nn.InstanceNorm2d(4, affine=True)
    nn.init.normal_(gn.weight)
    nn.init.normal_(gn.bias)
    inorm.load_state_dict(gn.state_dict())
    x = mg.tensor(x_of(2, 4, 3, 3))
    np.testing.assert_allclose(gn(x).numpy(), inorm(x).numpy(), atol=1e-5)


def test_batch_norm_eval_uses_running_statistics_by_hand():
    bn = nn.BatchNorm1d(2, momentum=0.5)
    x = mg.tensor([[1.0, 2.0], [3.0, 6.0]])
    bn(x)  # batch mean (2, 4), unbiased var (2, 8)
    np.testing.assert_allclose(bn.running_mean.numpy(), [1.0, 2.0])
    np.testing.assert_allclose(bn.running_var.numpy(), [1.5, 4.5])
    assert bn.num_batches_tracked.item() == 1
    bn.eval()
    np.testing.assert_allclose(
        bn(x).numpy(), (x.numpy() - [1.0, 2.0]) / np.sqrt(np.array([1.5, 4.5]) + 1e-5), rtol=1e-5
    )
    assert bn.num_batches_tracked.item() == 1  # eval does not count batches


def test_norm_layers_reject_wrong_input():
    with pytest.raises(ValueError, match=r"BatchNorm2d\(3\) expects 4-D input with 3 channels"):
        nn.BatchNorm2d(3)(mg.randn(2, 3))
    with pytest.raises(ValueError, match="BatchNorm1d"):
        nn.BatchNorm1d(3)(mg.randn(2, 4))
    with pytest.raises(ValueError, match="divisible"):
        nn.GroupNorm(3, 4)
