"""Weight penalties (values and gradients by hand), parameter selection, weight noise, and
the two label-smoothing forms of cross_entropy."""

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn
from minigrad.nn import functional as F
from minigrad.nn.regularization import elastic_net, l1_penalty, l2_penalty, penalised_parameters, weight_noise


def small_net():
    return nn.Sequential(
        nn.Conv2d(1, 2, 3),
        nn.BatchNorm2d(2),
        nn.Flatten(),
        nn.Linear(8, 3),
        nn.LayerNorm(3),
        nn.Linear(3, 2, bias=False),
    )


def test_selection_skips_biases_and_normalisation_parameters():
    net = small_net()
    assert [id(p) for p in penalised_parameters(net)] == [id(net[0].weight), id(net[3].weight), id(net[5].weight)]
    with_biases = penalised_parameters(net, include_biases=True)
    assert id(net[3].bias) in map(id, with_biases) and id(net[1].bias) not in map(id, with_biases)
    everything = penalised_parameters(net, include_biases=True, include_normalization=True)
    assert len(everything) == len(list(net.parameters()))


def test_penalty_values_and_gradients_by_hand():
    w1 = mg.tensor([[1.0, -2.0], [0.5, 0.0]], requires_grad=True)
    w2 = mg.tensor([3.0, -0.25], requires_grad=True)
    assert l1_penalty([w1, w2]).item() == pytest.approx(1 + 2 + 0.5 + 3 + 0.25)
    assert l2_penalty([w1, w2]).item() == pytest.approx(0.5 * (1 + 4 + 0.25 + 9 + 0.0625))
    elastic_net([w1, w2], l1=0.1, l2=0.01).backward()
    # d/dw [0.1 |w| + 0.01 * w^2 / 2] = 0.1 sign(w) + 0.01 w  (sign(0) = 0)
    np.testing.assert_allclose(w1.grad.numpy(), 0.1 * np.sign(w1.numpy()) + 0.01 * w1.numpy(), rtol=1e-6)
    np.testing.assert_allclose(w2.grad.numpy(), 0.1 * np.sign(w2.numpy()) + 0.01 * w2.numpy(), rtol=1e-6)


def test_l2_penalty_of_a_model_equals_weight_decay_gradient():
    net = small_net()
    l2_penalty(net).backward()
    for p in net.parameters():
        if any(p is w for w in penalised_parameters(net)):
            np.testing.assert_allclose(p.grad.numpy(), p.numpy(), rtol=1e-6)  # gradient = w
        else:
            assert p.grad is None
    with pytest.raises(ValueError, match="no parameters"):
        l1_penalty(nn.Sequential(nn.ReLU()))


def test_weight_noise_perturbs_for_the_step_and_restores_exactly():
    layer = nn.Linear(400, 300)
    before = layer.weight.numpy().copy()
    bias_before = layer.bias.numpy().copy()
    x = mg.randn(5, 400)
    with weight_noise(layer, std=0.02):
        noisy = layer.weight.numpy().copy()
        out = layer(x)
        (out * out).sum().backward()
    delta = noisy - before
    assert abs(delta.std() - 0.02) < 0.001 and abs(delta.mean()) < 0.001
    np.testing.assert_array_equal(layer.weight.numpy(), before)  # restored bit for bit
    np.testing.assert_array_equal(layer.bias.numpy(), bias_before)  # biases are not perturbed
    # the gradient was taken at the noisy weights: d sum(out^2) / dW = 2 out^T x with out = x Wn^T + b
    expected_out = x.numpy() @ noisy.T + bias_before
    np.testing.assert_allclose(layer.weight.grad.numpy(), 2 * expected_out.T @ x.numpy(), rtol=1e-4, atol=1e-4)


def test_label_smoothing_uniform_matches_pytorch():
    torch = pytest.importorskip("torch", reason="parity with torch's label_smoothing needs PyTorch")
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((6, 5)).astype(np.float32)
    target = rng.integers(0, 5, 6)
    ours = mg.tensor(logits, requires_grad=True)
    theirs = torch.tensor(logits, requires_grad=True)
    loss = F.cross_entropy(ours, mg.tensor(target), label_smoothing=0.1)
    ref = torch.nn.functional.cross_entropy(theirs, torch.tensor(target), label_smoothing=0.1)
    loss.backward()
    ref.backward()
    assert loss.item() == pytest.approx(ref.item(), rel=1e-5)
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), atol=1e-6)


def test_label_smoothing_lecture_form_by_hand():
    logits = np.array([[2.0, 0.0, -1.0]])
    eps = 0.3
    log_probs = logits - np.log(np.exp(logits).sum())
    q = np.array([1 - eps, eps / 2, eps / 2])  # true class 0: 1-eps, each other class eps/(K-1)
    loss = F.cross_entropy(
        mg.tensor(logits, dtype="float64"), mg.tensor([0]), label_smoothing=eps, smoothing_style="others"
    )
    assert loss.item() == pytest.approx(-(q * log_probs).sum()[()], rel=1e-12)
