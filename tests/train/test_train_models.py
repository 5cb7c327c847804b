"""The training loop with the real layers and optimisers: LeNet-5 learns the digits."""

import numpy as np
import pytest

import minigrad as mg
from minigrad import models, nn, optim
from minigrad.data import DataLoader, Digits, Shapes, TensorDataset, random_split
from minigrad.data.transforms import RandomAffine, RandomCrop, Standardize
from minigrad.nn import functional as F
from minigrad.train import EarlyStopping, ModelCheckpoint, Trainer, evaluate


def test_lenet5_with_adam_reaches_97_percent_on_the_digits():
    pytest.importorskip(
        "sklearn", reason="the digits dataset comes with scikit-learn (pip install 'minigrad[datasets]')"
    )
    mg.manual_seed(0)
    train, test = Digits(size=28), Digits(train=False, size=28)
    scaling = Standardize().fit(train.arrays[0])
    train_loader = DataLoader(
        TensorDataset(scaling(train.arrays[0]), train.arrays[1]),
        batch_size=64,
        shuffle=True,
        transform=RandomAffine(degrees=8, translate=(0.08, 0.08)),
    )
    test_loader = DataLoader(TensorDataset(scaling(test.arrays[0]), test.arrays[1]), batch_size=512)
    model = models.lenet5()
    adam = optim.Adam(model.parameters(), lr=2e-3)
    cosine = optim.lr_scheduler.CosineAnnealingLR(adam, T_max=20)
    history = Trainer(model, adam, F.cross_entropy, scheduler=cosine, progress=False).fit(train_loader, epochs=20)
    scores = evaluate(model, test_loader, F.cross_entropy)
    assert history["train_loss"][-1] < history["train_loss"][0] / 5 and history["lr"][-1] < 1e-4
    assert scores["accuracy"] >= 0.97, f"test accuracy {scores['accuracy']:.4f} after {history['train_loss']}"


def _shapes_run(directory, seed, resume_from=None, epochs=2):
    mg.manual_seed(seed)
    data = Shapes(n=192, size=16)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Dropout(0.3),
        nn.Linear(4 * 8 * 8, 5),
    )
    optimizer = optim.Adam(model.parameters(), lr=1e-2)
    schedule = optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    losses = []

    class Record(EarlyStopping):
        def on_batch_end(self, trainer, step, logs):
            losses.append(logs["loss"])

    trainer = Trainer(
        model,
        optimizer,
        F.cross_entropy,
        scheduler=schedule,
        progress=False,
        callbacks=[
            Record("train_loss", patience=5),
            ModelCheckpoint(directory / "e{epoch}.safetensors", save_best_only=False),
        ],
    )
    if resume_from:
        trainer.load_checkpoint(resume_from)
    loader = DataLoader(data, batch_size=32, shuffle=True, transform=RandomCrop(16, padding=2))
    trainer.fit(loader, epochs=epochs)
    return losses, model


def test_resume_with_real_layers_and_adam_gives_the_same_next_step_loss(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    full, model_a = _shapes_run(tmp_path / "a", seed=0)
    resumed, model_b = _shapes_run(tmp_path / "b", seed=99, resume_from=tmp_path / "a" / "e1.safetensors")
    assert resumed == full[6:]  # 6 steps per epoch; epoch 2 repeats exactly (BatchNorm, dropout, Adam, StepLR)
    for (name, a), (_, b) in zip(model_a.state_dict().items(), model_b.state_dict().items()):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=name)


def test_early_stopping_restores_real_module_weights():
    mg.manual_seed(0)
    x = np.random.default_rng(0).standard_normal((64, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    parts = random_split(TensorDataset(x, y), [48, 16], seed=0)
    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 2))
    snapshots = {}

    class Script(EarlyStopping):
        def on_epoch_end(self, trainer, epoch, logs):
            logs["val_loss"] = [0.5, 0.3, 0.4, 0.45, 0.2][epoch - 1]
            snapshots[epoch] = {k: np.array(v.data) for k, v in trainer.model.state_dict().items()}

    stopper = EarlyStopping(patience=2)
    trainer = Trainer(
        model,
        optim.SGD(model.parameters(), lr=0.1),
        F.cross_entropy,
        callbacks=[Script(patience=99), stopper],
        progress=False,
    )
    trainer.fit(DataLoader(parts[0], batch_size=8, shuffle=True), DataLoader(parts[1], batch_size=16), epochs=5)
    assert trainer.epoch == 4 and stopper.best_epoch == 2
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value.data, snapshots[2][name])
