"""Fixtures of the training-loop tests (the helpers live in tiny_training.py)."""

import pytest

import minigrad as mg
from minigrad.data import DataLoader, TensorDataset
from minigrad.nn import functional as F

from tiny_training import HalvingSchedule, MomentumSGD, TinyNet, blobs


@pytest.fixture
def problem():
    """(model, optimizer, loss_fn, train_loader, val_loader) of a small 3-class problem."""
    mg.manual_seed(0)
    x, y = blobs(240, 1)
    vx, vy = blobs(90, 2)
    model = TinyNet(6, 16, 3)
    optimizer = MomentumSGD(model.parameters(), lr=0.05)
    return (
        model,
        optimizer,
        F.cross_entropy,
        DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True),
        DataLoader(TensorDataset(vx, vy), batch_size=64),
    )


@pytest.fixture
def tiny():
    return TinyNet, MomentumSGD, HalvingSchedule
