"""Winograd's float32 error does not cost accuracy: ResNet-8 trained on the digits with every
3x3 stride-1 convolution on Winograd F(4x4) (MINIGRAD_CONV_ALGO=winograd_f4) ends where the
direct kernels take it, from the same seeds.

Two float32 convolutions that differ by ~1e-6 (relative; the transforms' error, measured on
this model's shapes) send Adam down different paths, so one run measures that chaos more
than the error: after 4 epochs the direct path alone ended anywhere in 0.958-0.981 over
seeds 0-5, and after 8 Winograd's single runs still spread over 0.964-0.994 (direct
0.980-0.986). Hence three seeds, 8 epochs each (converged), compared by their means: over
seeds 0-2 the means were 0.983 (direct) and 0.974 (Winograd).
"""

import pytest

import minigrad as mg
from minigrad import _C, models, optim
from minigrad.data import DataLoader, Digits, TensorDataset
from minigrad.data.transforms import Standardize
from minigrad.nn import functional as F
from minigrad.train import Trainer, evaluate


def train_resnet8(algo, monkeypatch, seed):
    monkeypatch.setenv("MINIGRAD_CONV_ALGO", algo)
    mg.manual_seed(seed)
    train, test = Digits(size=16), Digits(train=False, size=16)
    scaling = Standardize().fit(train.arrays[0])
    loader = DataLoader(TensorDataset(scaling(train.arrays[0]), train.arrays[1]), batch_size=64, shuffle=True)
    model = models.resnet8(in_channels=1)
    adam = optim.Adam(model.parameters(), lr=3e-3)
    before = _C.conv2d_calls()
    Trainer(model, adam, F.cross_entropy, progress=False).fit(loader, epochs=8)
    ran = {p: calls.get(algo, 0) - before[p].get(algo, 0) for p, calls in _C.conv2d_calls().items()}
    test_loader = DataLoader(TensorDataset(scaling(test.arrays[0]), test.arrays[1]), batch_size=512)
    return evaluate(model, test_loader, F.cross_entropy)["accuracy"], ran


SEEDS = (0, 1, 2)


def test_resnet8_on_winograd_learns_the_digits_as_well_as_on_direct(monkeypatch):
    pytest.importorskip(
        "sklearn", reason="the digits dataset comes with scikit-learn (pip install 'minigrad[datasets]')"
    )
    direct = [train_resnet8("direct", monkeypatch, seed)[0] for seed in SEEDS]
    runs = [train_resnet8("winograd_f4", monkeypatch, seed) for seed in SEEDS]
    winograd = [accuracy for accuracy, _ in runs]
    for _, ran in runs:
        assert all(calls > 0 for calls in ran.values()), ran  # every pass really ran on Winograd
    mean_direct, mean_winograd = sum(direct) / len(SEEDS), sum(winograd) / len(SEEDS)
    assert mean_direct >= 0.97 and mean_winograd >= 0.96, (direct, winograd)
    assert abs(mean_winograd - mean_direct) <= 0.02, (direct, winograd)
