"""Resuming keeps every callback's state (the best monitored value, EarlyStopping's patience
count, schedules): train, stop, resume gives the run an uninterrupted one gives. And checkpoint
paths format only their documented placeholders."""

import numpy as np
import pytest

import minigrad as mg
from minigrad import optim
from minigrad.data import DataLoader, TensorDataset
from minigrad.nn import functional as F
from minigrad.optim import lr_scheduler
from minigrad.train import Callback, EarlyStopping, ModelCheckpoint, fit, load_checkpoint

from tiny_training import blobs


class Stops(Callback):
    """Records where early stopping ended the run."""

    def __init__(self):
        self.epochs = []

    def on_epoch_end(self, trainer, epoch, logs):
        self.epochs.append(epoch)


def _train(tiny, directory, epochs, resume_from=None):
    TinyNet, _, _ = tiny
    mg.manual_seed(0)
    x, y = blobs(120, 3)
    xv, yv = blobs(60, 9)
    model = TinyNet(6, 16, 3, p=0.3)
    optimizer = optim.SGD(model.parameters(), lr=0.4, momentum=0.9)  # noisy: validation loss goes up and down
    plateau = lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=1)
    stopper, seen = EarlyStopping("val_loss", patience=3), Stops()
    history = fit(
        model,
        optimizer,
        F.cross_entropy,
        DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True),
        DataLoader(TensorDataset(xv, yv), batch_size=60),
        epochs=epochs,
        scheduler=plateau,
        callbacks=[
            stopper,
            seen,
            ModelCheckpoint(directory / "best.safetensors"),
            ModelCheckpoint(directory / "last.safetensors", save_best_only=False),
        ],
        progress=False,
        resume_from=resume_from,
    )
    return history, stopper, model


def _numbers(history):
    return [{k: v for k, v in row.items() if k != "time"} for row in history.rows]


def test_train_stop_resume_equals_the_uninterrupted_run(tiny, tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "cut").mkdir()
    full, full_stopper, full_model = _train(tiny, tmp_path / "full", epochs=40)
    assert full_stopper.stopped_epoch is not None, "the problem must stop early for this test to mean anything"
    rows = _numbers(full)
    # stop after an epoch that was NOT the best one: the resumed run must remember the best and the count
    cut = next(
        e
        for e in range(2, full_stopper.stopped_epoch)
        if rows[e - 1]["val_loss"] > min(r["val_loss"] for r in rows[: e - 1])
    )
    _train(tiny, tmp_path / "cut", epochs=cut)
    resumed, stopper, model = _train(
        tiny, tmp_path / "cut", epochs=40, resume_from=tmp_path / "cut" / "last.safetensors"
    )

    assert stopper.stopped_epoch == full_stopper.stopped_epoch
    assert _numbers(resumed) == rows  # bit for bit, every epoch
    best_full = load_checkpoint(tmp_path / "full" / "best.safetensors")
    best_cut = load_checkpoint(tmp_path / "cut" / "best.safetensors")
    assert best_cut["epoch"] == best_full["epoch"] == full.best("val_loss")["epoch"]
    for name, value in best_full["model"].items():
        np.testing.assert_array_equal(best_cut["model"][name].data, value.data)
    for name, value in full_model.state_dict().items():  # best weights restored at the end
        np.testing.assert_array_equal(model.state_dict()[name].data, value.data)


def test_callbacks_state_round_trips_through_a_checkpoint(tiny, tmp_path):
    stopper = EarlyStopping(patience=4)
    stopper.best, stopper.wait, stopper.best_epoch = 0.25, 2, 3
    checkpoint = ModelCheckpoint(tmp_path / "b.safetensors")
    checkpoint.best = 0.5
    assert Callback().state_dict() == {}
    fresh_stopper, fresh_checkpoint = EarlyStopping(patience=4), ModelCheckpoint(tmp_path / "b.safetensors")
    fresh_stopper.load_state_dict(stopper.state_dict())
    fresh_checkpoint.load_state_dict(checkpoint.state_dict())
    assert (fresh_stopper.best, fresh_stopper.wait, fresh_stopper.best_epoch) == (0.25, 2, 3)
    assert fresh_checkpoint.best == 0.5


@pytest.mark.parametrize(
    "template,expected",
    [
        ("a{b}.safetensors", "a{b}.safetensors"),
        ("ck{epoch}.safetensors", "ck2.safetensors"),
        ("ck{epoch:03d}-{val_loss:.2f}.safetensors", "ck002-0.50.safetensors"),
        ("{}{0}{epoch!r}{{epoch}}.safetensors", "{}{0}{epoch!r}{2}.safetensors"),
        ("{unknown}-{epoch}.safetensors", "{unknown}-2.safetensors"),
    ],
)
def test_checkpoint_paths_format_only_documented_placeholders(tmp_path, template, expected):
    from minigrad.train.callbacks import format_path

    assert format_path(template, {"epoch": 2, "val_loss": 0.5, "lr": None}) == expected


def test_braces_in_the_directory_are_literal(tiny, tmp_path):
    directory = tmp_path / "run{x}{epoch}"
    directory.mkdir()
    TinyNet, _, _ = tiny
    x, y = blobs(32, 1)
    model = TinyNet(6, 4, 3)
    fit(
        model,
        optim.SGD(model.parameters(), lr=0.1),
        F.cross_entropy,
        DataLoader(TensorDataset(x, y), batch_size=16),
        DataLoader(TensorDataset(x, y), batch_size=16),
        epochs=2,
        progress=False,
        callbacks=[ModelCheckpoint(directory / "a{b}-{epoch}.safetensors", save_best_only=False)],
    )
    assert sorted(p.name for p in directory.iterdir()) == ["a{b}-1.safetensors", "a{b}-2.safetensors"]
