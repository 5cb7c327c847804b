"""Checkpoints: what they hold, exact resume, and the NaN guard leaving them untouched."""
import numpy as np
import pytest

import minigrad as mg
from minigrad.data import DataLoader, TensorDataset, transforms
from minigrad.nn import functional as F
from minigrad.train import Callback, ModelCheckpoint, Trainer, TrainingDiverged, load_checkpoint, save_checkpoint

from tiny_training import blobs


class RecordLosses(Callback):
    def __init__(self):
        self.losses = []

    def on_batch_end(self, trainer, step, logs):
        self.losses.append((trainer.epoch + 1, step, logs["loss"]))


def _run(tiny, directory, seed, resume_from=None, epochs=3):
    TinyNet, MomentumSGD, Halving = tiny
    mg.manual_seed(seed)
    x, y = blobs(100, 3)
    model = TinyNet(6, 12, 3, p=0.3)                                  # dropout draws from the global generator
    optimizer = MomentumSGD(model.parameters(), lr=0.05)
    loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True,   # so does shuffling
                        transform=transforms.GaussianNoise(0.2))           # and the augmentation
    record = RecordLosses()
    trainer = Trainer(model, optimizer, F.cross_entropy, scheduler=Halving(optimizer), progress=False,
                      callbacks=[record, ModelCheckpoint(directory / "ck{epoch}.safetensors", save_best_only=False)])
    if resume_from is not None:
        trainer.load_checkpoint(resume_from)
    trainer.fit(loader, epochs=epochs)
    return record.losses, trainer


def test_resume_continues_exactly_like_the_uninterrupted_run(tiny, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    full, _ = _run(tiny, tmp_path / "a", seed=0)
    # a different seed: different initial weights and random stream, unless the checkpoint restores them
    resumed, trainer = _run(tiny, tmp_path / "b", seed=123, resume_from=tmp_path / "a" / "ck1.safetensors")
    after_first = [entry for entry in full if entry[0] >= 2]
    assert resumed[0] == after_first[0]  # the next step's loss, bit for bit
    assert resumed == after_first        # and every step after it
    assert trainer.history["epoch"] == [1, 2, 3] and trainer.history["lr"] == [0.05, 0.025, 0.0125]
    assert trainer.global_step == 3 * 7


def test_checkpoint_holds_every_state(tiny, tmp_path):
    TinyNet, MomentumSGD, Halving = tiny
    model = TinyNet(6, 4, 3)
    optimizer = MomentumSGD(model.parameters(), lr=0.1)
    optimizer.param_groups[0]["betas"] = (0.9, 0.99)
    optimizer.state = {1: {"momentum_buffer": np.arange(4, dtype=np.float32)}}
    schedule = Halving(optimizer)
    schedule.last_epoch = 4
    rng_state = mg.get_rng_state()
    save_checkpoint(tmp_path / "c.safetensors", model, optimizer, schedule, epoch=4, extra={"note": [1, "two"]})
    state = load_checkpoint(tmp_path / "c.safetensors")
    assert state["epoch"] == 4 and state["scheduler"] == {"last_epoch": 4} and state["extra"] == {"note": [1, "two"]}
    assert state["rng_state"] == rng_state
    assert state["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.99)
    assert list(state["optimizer"]["state"]) == [1]  # integer keys survive
    np.testing.assert_array_equal(state["optimizer"]["state"][1]["momentum_buffer"], np.arange(4))
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(np.asarray(getattr(state["model"][name], "data", state["model"][name])), value.data)
    mg.save({"w": np.zeros(2, np.float32)}, tmp_path / "weights.safetensors")
    with pytest.raises(ValueError, match="not a minigrad training checkpoint"):
        load_checkpoint(tmp_path / "weights.safetensors")


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # the diverged softmax
def test_nan_guard_leaves_the_last_good_checkpoint_untouched(tiny, tmp_path):
    TinyNet, MomentumSGD, _ = tiny
    x, y = blobs(64, 4)
    model = TinyNet(6, 8, 3, p=0.0)
    optimizer = MomentumSGD(model.parameters(), lr=0.05, momentum=0.0)
    loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True)
    path = tmp_path / "last.safetensors"
    trainer = Trainer(model, optimizer, F.cross_entropy, progress=False,
                      callbacks=[ModelCheckpoint(path, save_best_only=False)])
    trainer.fit(loader, epochs=1)
    good = path.read_bytes()
    optimizer.param_groups[0]["lr"] = 1e8  # a deliberately huge learning rate
    with pytest.raises(TrainingDiverged, match=r"at epoch 2, step \d.*learning rate \(1e\+08\) is probably too high"):
        trainer.fit(loader, epochs=5)
    assert path.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.safetensors"]
    assert trainer.epoch == 1 and len(trainer.history) == 1
