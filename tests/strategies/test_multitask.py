"""Multi-task: the loss is the weighted sum of the task losses, and every head's gradient reaches the trunk."""

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn, optim
from minigrad.data import DataLoader, TensorDataset
from minigrad.nn import functional as F
from minigrad.strategies.multitask import MultiTaskLoss, MultiTaskModel, Task
from minigrad.train import fit


def _setup(uncertainty=False):
    trunk = nn.Sequential(nn.Linear(6, 8), nn.Tanh())
    model = MultiTaskModel(trunk, {"a": nn.Linear(8, 4), "b": nn.Linear(8, 2), "r": nn.Linear(8, 1)})
    loss = MultiTaskLoss(
        [
            Task("a", F.cross_entropy, 1.0),
            Task("b", F.cross_entropy, 0.25),
            Task("r", F.mse_loss, 2.0, classification=False),
        ],
        uncertainty=uncertainty,
    )
    rng = np.random.default_rng(3)
    x = rng.standard_normal((10, 6)).astype(np.float32)
    y = rng.integers(0, 4, 10)
    targets = loss.stack_targets(a=y, b=y % 2, r=x[:, 0] * 2)
    return model, loss, mg.Tensor(x), targets, y


def test_loss_is_the_weighted_sum_of_task_losses():
    model, loss, x, targets, y = _setup()
    out = model(x)
    total = loss(out, targets)
    a = F.cross_entropy(out["a"], y).item()
    b = F.cross_entropy(out["b"], y % 2).item()
    r = F.mse_loss(out["r"].reshape(-1), mg.Tensor(x.data[:, 0] * 2)).item()
    np.testing.assert_allclose(total.item(), 1.0 * a + 0.25 * b + 2.0 * r, rtol=1e-6)
    assert loss.last_losses == pytest.approx({"a": a, "b": b, "r": r}, rel=1e-6)


def test_uncertainty_weighting_formula_and_gradient():
    model, loss, x, targets, y = _setup(uncertainty=True)
    loss.log_variance.data[:] = [0.5, -1.0, 0.0]
    total = loss(model(x), targets)
    parts = loss.last_losses
    expected = sum(np.exp(-s) * parts[n] + s for n, s in zip("abr", [0.5, -1.0, 0.0]))
    np.testing.assert_allclose(total.item(), expected, rtol=1e-5)
    total.backward()  # dL/ds_t = 1 - exp(-s_t) L_t
    np.testing.assert_allclose(
        loss.log_variance.grad.data, [1 - np.exp(-s) * parts[n] for n, s in zip("abr", [0.5, -1.0, 0.0])], rtol=1e-5
    )


@pytest.mark.parametrize("task", ["a", "b", "r"])
def test_gradient_reaches_the_trunk_from_every_head(task):
    model, loss, x, targets, _ = _setup()
    only = MultiTaskLoss([t for t in loss.tasks if t.name == task])
    column = [t.name for t in loss.tasks].index(task)
    only(model(x), targets[:, [column]]).backward()
    assert np.abs(model.trunk[0].weight.grad.data).sum() > 0
    for name, head in model.heads.items():  # the other heads get nothing
        assert (head.weight.grad is not None) == (name == task)


def test_trunk_gradient_is_the_weighted_sum_of_the_heads_gradients():
    model, loss, x, targets, _ = _setup()
    per_task = []
    for column, task in enumerate(loss.tasks):
        model.zero_grad()
        MultiTaskLoss([task])(model(x), targets[:, [column]]).backward()
        per_task.append(np.array(model.trunk[0].weight.grad.data))
    model.zero_grad()
    loss(model(x), targets).backward()
    np.testing.assert_allclose(model.trunk[0].weight.grad.data, sum(per_task), rtol=1e-5, atol=1e-7)


def test_per_task_metrics_in_history():
    model, loss, x, targets, _ = _setup()
    loader = DataLoader(TensorDataset(x.data, targets), 5)
    history = fit(
        model,
        optim.SGD(model.parameters(), lr=0.1),
        loss,
        loader,
        loader,
        epochs=2,
        metrics=loss.metrics(),
        progress=False,
    )
    for column in ("train_a_accuracy", "val_b_accuracy", "val_r_loss", "val_a_loss"):
        assert len(history[column]) == 2
    # the logged per-task loss is that task's own loss on the data
    with mg.no_grad():
        out = model(x)
        expected = F.cross_entropy(out["b"], mg.Tensor(targets[:, 1].astype(np.int64))).item()
    np.testing.assert_allclose(history["val_b_loss"][-1], expected, rtol=1e-5)


def test_targets_with_the_wrong_number_of_columns_are_refused():
    model, loss, x, targets, _ = _setup()
    with pytest.raises(ValueError, match=r"targets must be \(N, 3\)"):
        loss(model(x), targets[:, :2])
