"""Distillation: the soft-target loss against PyTorch's KL divergence; the hint stage changes only
the student's lower layers and the regressor."""

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn, optim
from minigrad.data import DataLoader, TensorDataset
from minigrad.strategies.distill import Distiller, conv_regressor, hint_loss, hint_training, soft_target_loss
from minigrad.train import fit


def _students_and_teacher():
    teacher = nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(6 * 16, 3)
    )
    student = nn.Sequential(
        nn.Conv2d(1, 2, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(2, 2, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(2 * 16, 3),
    )
    return teacher, student


def test_soft_target_loss_equals_torch_kl_times_t_squared():
    torch = pytest.importorskip("torch", reason="PyTorch's kl_div is the reference")
    rng = np.random.default_rng(0)
    s, t = rng.standard_normal((5, 4)), rng.standard_normal((5, 4)) * 3
    T = 3.0
    student = mg.Tensor(s, requires_grad=True)
    loss = soft_target_loss(student, t, T)
    loss.backward()
    ts = torch.tensor(s, requires_grad=True)
    ref = (
        torch.nn.functional.kl_div(
            torch.log_softmax(ts / T, 1), torch.softmax(torch.tensor(t) / T, 1), reduction="batchmean"
        )
        * T
        * T
    )
    ref.backward()
    np.testing.assert_allclose(loss.item(), ref.item(), rtol=1e-10)
    np.testing.assert_allclose(student.grad.data, ts.grad.numpy(), rtol=1e-9, atol=1e-12)
    assert soft_target_loss(mg.Tensor(t), t, T).item() == pytest.approx(0.0, abs=1e-12)


def test_hint_loss_is_half_the_squared_distance_per_example():
    rng = np.random.default_rng(1)
    u, r = rng.standard_normal((3, 2, 4, 4)), rng.standard_normal((3, 2, 4, 4))
    expected = 0.5 * ((u - r) ** 2).reshape(3, -1).sum(1).mean()
    assert hint_loss(u, mg.Tensor(r)).item() == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="same shape"):
        hint_loss(u[:, :1], mg.Tensor(r))


def test_hint_stage_changes_only_the_students_lower_layers_and_the_regressor():
    teacher, student = _students_and_teacher()
    regressor = conv_regressor(2, 6, 8, 8)  # guided (2, 8, 8) -> hint (6, 8, 8): a 1x1 convolution
    assert regressor.weight.shape == (6, 2, 1, 1)

    def snapshot(m):
        return {k: np.array(v.data) for k, v in m.state_dict().items()}

    before = {"teacher": snapshot(teacher), "student": snapshot(student), "regressor": snapshot(regressor)}
    x = np.random.default_rng(2).random((12, 1, 8, 8)).astype(np.float32)
    loader = DataLoader(TensorDataset(x, np.zeros(12, dtype=np.int64)), 4)
    lower = student[:5]  # student[:5] ends at the guided layer (after the pool)
    opt = optim.Adam(list(lower.parameters()) + list(regressor.parameters()), lr=1e-2)
    losses = hint_training(teacher[:3], lower, regressor, loader, opt, epochs=3)
    assert losses[-1] < losses[0]
    after = {"teacher": snapshot(teacher), "student": snapshot(student), "regressor": snapshot(regressor)}
    for key, value in before["teacher"].items():
        np.testing.assert_array_equal(after["teacher"][key], value)
    for key, value in before["student"].items():
        changed = not np.array_equal(after["student"][key], value)
        assert changed == (int(key.split(".")[0]) < 5), key  # lower layers changed, the head did not
    assert all(not np.array_equal(after["regressor"][k], v) for k, v in before["regressor"].items())


def test_hint_training_refuses_an_optimiser_over_other_parameters():
    teacher, student = _students_and_teacher()
    regressor = conv_regressor(2, 6, 8, 8)
    with pytest.raises(ValueError, match="outside the student's lower layers"):
        hint_training(teacher[:3], student[:5], regressor, [], optim.SGD(student.parameters(), lr=0.1))


def test_distiller_trains_the_student_only_on_the_mixed_loss():
    teacher, student = _students_and_teacher()
    distiller = Distiller(student, teacher, temperature=2.0, alpha=0.6)
    assert list(distiller.state_dict()) == [f"student.{k}" for k in student.state_dict()]
    x = np.random.default_rng(3).random((8, 1, 8, 8)).astype(np.float32)
    y = np.arange(8) % 3
    out = distiller(mg.Tensor(x))
    expected = (
        0.6 * soft_target_loss(out, teacher(mg.Tensor(x)).data, 2.0).item()
        + 0.4 * mg.nn.functional.cross_entropy(out, mg.Tensor(y)).item()
    )
    assert distiller.loss(out, mg.Tensor(y)).item() == pytest.approx(expected, rel=1e-6)
    teacher_before = np.array(teacher[0].weight.data)
    loader = DataLoader(TensorDataset(x, y), 4)
    fit(distiller, optim.Adam(student.parameters(), lr=1e-2), distiller.loss, loader, loader, epochs=1, progress=False)
    np.testing.assert_array_equal(teacher[0].weight.data, teacher_before)
