"""Gradient clipping against torch.nn.utils."""

import numpy as np
import pytest

import minigrad as mg
from minigrad import optim

torch = pytest.importorskip("torch", reason="torch.nn.utils is the reference")


def _pairs(scale):
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal(s).astype(np.float32) * scale for s in ((3, 4), (5,), (2, 2, 2))]
    ours = [mg.zeros(g.shape, requires_grad=True) for g in grads]
    theirs = [torch.zeros(g.shape, requires_grad=True) for g in grads]
    for o, t, g in zip(ours, theirs, grads):
        o.grad, t.grad = mg.tensor(g), torch.tensor(g)
    return ours, theirs


@pytest.mark.parametrize("norm_type", [2.0, 1.0, float("inf")])
@pytest.mark.parametrize("scale", [0.01, 10.0])
def test_clip_grad_norm_matches_torch(norm_type, scale):
    ours, theirs = _pairs(scale)
    n_ours = optim.clip_grad_norm_(ours, max_norm=1.5, norm_type=norm_type)
    n_theirs = torch.nn.utils.clip_grad_norm_(theirs, max_norm=1.5, norm_type=norm_type)
    assert n_ours.item() == pytest.approx(n_theirs.item(), rel=1e-6)
    for o, t in zip(ours, theirs):
        np.testing.assert_allclose(o.grad.data, t.grad.numpy(), rtol=1e-6)


def test_clip_grad_value_matches_torch():
    ours, theirs = _pairs(1.0)
    optim.clip_grad_value_(ours, 0.5)
    torch.nn.utils.clip_grad_value_(theirs, 0.5)
    for o, t in zip(ours, theirs):
        np.testing.assert_array_equal(o.grad.data, t.grad.numpy())
    assert max(np.max(np.abs(o.grad.data)) for o in ours) == 0.5


def test_nonfinite_norm_raises_when_asked():
    ours, _ = _pairs(1.0)
    ours[0].grad.data[0, 0] = np.inf
    with pytest.raises(RuntimeError, match="non-finite"):
        optim.clip_grad_norm_(ours, 1.0, error_if_nonfinite=True)
