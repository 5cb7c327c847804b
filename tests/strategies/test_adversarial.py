"""FGSM: perturbation of infinity-norm eps that raises the loss; input gradients equal PyTorch's."""

import numpy as np
import pytest

import minigrad as mg
from minigrad import models, optim
from minigrad.data import DataLoader, TensorDataset
from minigrad.nn import functional as F
from minigrad.strategies.adversarial import AdversarialBatches, fgsm, input_gradient
from minigrad.train import fit


def _blobs(n=96, seed=0):
    """Two-class Gaussian blobs in 10-D: easy to fit, so the trained model is confident."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.standard_normal((n, 10)).astype(np.float32) * 0.5 + (2 * y[:, None] - 1).astype(np.float32)
    return x, y


def test_fgsm_step_has_inf_norm_eps_and_raises_the_loss_of_a_trained_model():
    x, y = _blobs()
    model = models.mlp([10, 16, 2])
    fit(
        model,
        optim.Adam(model.parameters(), lr=0.05),
        F.cross_entropy,
        DataLoader(TensorDataset(x, y), 32, shuffle=True),
        epochs=10,
        progress=False,
    )
    model.eval()
    model.zero_grad()  # training left gradients; the attack must add none
    clean = F.cross_entropy(model(mg.Tensor(x)), mg.Tensor(y)).item()
    assert clean < 0.1
    for eps in (0.05, 0.3):
        adversarial = fgsm(model, x, y, eps)
        change = np.abs(adversarial.data - x)
        assert change.max() == pytest.approx(eps, rel=1e-6) and np.all((change == 0) | np.isclose(change, eps))
        assert F.cross_entropy(model(adversarial), mg.Tensor(y)).item() > clean
    assert all(p.grad is None for p in model.parameters())  # the attack left no parameter gradient behind
    assert all(p.requires_grad for p in model.parameters())


def test_fgsm_clip_keeps_valid_range():
    model = models.mlp([10, 2])
    x = np.random.default_rng(0).random((4, 10)).astype(np.float32)
    out = fgsm(model, x, np.array([0, 1, 0, 1]), 0.5, clip=(0.0, 1.0)).data
    assert out.min() >= 0 and out.max() <= 1


def test_input_gradients_equal_pytorch():
    torch = pytest.importorskip("torch", reason="PyTorch computes the reference input gradient")
    mg_model = models.lenet5()
    import torch_twins

    torch_model = torch_twins.lenet5()
    mg_model.load_state_dict({k: v.detach().numpy() for k, v in torch_model.state_dict().items()})
    x = np.random.default_rng(0).random((3, 1, 28, 28)).astype(np.float32)
    y = np.array([1, 7, 3])
    grad = input_gradient(mg_model, x, y)
    tx = torch.tensor(x, requires_grad=True)
    torch.nn.functional.cross_entropy(torch_model(tx), torch.tensor(y)).backward()
    np.testing.assert_allclose(grad, tx.grad.numpy(), rtol=1e-4, atol=1e-7 * np.abs(tx.grad.numpy()).max())
    eps = 0.1
    expected = x + eps * np.sign(tx.grad.numpy())
    np.testing.assert_allclose(fgsm(mg_model, x, y, eps).data, expected, atol=1e-7)


def test_adversarial_batches_hold_clean_then_fgsm_twins():
    x, y = _blobs(8)
    model = models.mlp([10, 2])
    batches = list(AdversarialBatches(DataLoader(TensorDataset(x, y), 4), model, eps=0.2))
    assert len(batches) == 2
    bx, by = batches[0]
    assert bx.shape == (8, 10)
    np.testing.assert_array_equal(bx.data[:4], x[:4])
    np.testing.assert_array_equal(by.data, np.concatenate([y[:4], y[:4]]))
    np.testing.assert_allclose(bx.data[4:], fgsm(model, x[:4], y[:4], 0.2).data)
    assert model.training  # restored after making the twins in eval mode
