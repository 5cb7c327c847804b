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
    model = TinyNet(6, 12, 3, p=0.3)  # dropout draws from the global generator
    optimizer = MomentumSGD(model.parameters(), lr=0.05)
    loader = DataLoader(
        TensorDataset(x, y),
        batch_size=16,
        shuffle=True,  # so does shuffling
        transform=transforms.GaussianNoise(0.2),
    )  # and the augmentation
    record = RecordLosses()
    trainer = Trainer(
        model,
        optimizer,
        F.cross_entropy,
        scheduler=Halving(optimizer),
        progress=False,
        callbacks=[record, ModelCheckpoint(directory / "ck{epoch}.safetensors", save_best_only=False)],
    )
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
    assert resumed == after_first  # and every step after it
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
        np.testing.assert_array_equal(
            np.asarray(getattr(state["model"][name], "data", state["model"][name])), value.data
        )
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
    trainer = Trainer(
        model, optimizer, F.cross_entropy, progress=False, callbacks=[ModelCheckpoint(path, save_best_only=False)]
    )
    trainer.fit(loader, epochs=1)
    good = path.read_bytes()
    optimizer.param_groups[0]["lr"] = 1e8  # a deliberately huge learning rate
    with pytest.raises(TrainingDiverged, match=r"at epoch 2, step \d.*learning rate \(1e\+08\) is probably too high"):
        trainer.fit(loader, epochs=5)
    assert path.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.safetensors"]
    assert trainer.epoch == 1 and len(trainer.history) == 1


def _checkpoint_with_structure(path, text: bytes, **arrays):
    """A safetensors file whose checkpoint.json tensor holds ``text`` (written by minigrad.save)."""
    mg.save({"checkpoint.json": np.frombuffer(text, dtype=np.uint8).copy(), **arrays}, path)
    return path


@pytest.mark.parametrize(
    "text,message",
    [
        (b"\xff\xfe{}", "not UTF-8"),
        (b'{"format": ', "not JSON"),
        (b"[" * 50_000 + b"]" * 50_000, "nested too deeply"),
        (b'{"format": "minigrad-checkpoint-1", "model": ' + b'{"a": ' * 3000 + b"1" + b"}" * 3001, "nested too deeply"),
        (b"[1, 2]", "not a JSON object"),
        (
            b'{"format": "minigrad-checkpoint-1", "epoch": 1, "rng_state": null, "model": {"w": {"__array__": "gone"}}}',
            "refers to array 'gone', which the file does not hold",
        ),
        (
            b'{"format": "minigrad-checkpoint-1", "epoch": 1, "rng_state": null, "model": {"w": {"__array__": [1]}}}',
            "refers to array \\[1\\]",
        ),
        (
            b'{"format": "minigrad-checkpoint-1", "epoch": 1, "rng_state": null, "model": {"__items__": 5}}',
            "__items__ must be a list of",
        ),
        (
            b'{"format": "minigrad-checkpoint-1", "epoch": 1, "rng_state": null, "model": {"__items__": [[[1], 2]]}}',
            "__items__ must be a list of",
        ),
        (
            b'{"format": "minigrad-checkpoint-1", "epoch": 1, "rng_state": null, "model": {"__tuple__": 3}}',
            "__tuple__ must be a list",
        ),
        (b'{"format": "minigrad-checkpoint-0"}', "unknown checkpoint format 'minigrad-checkpoint-0'"),
        (b'{"format": "minigrad-checkpoint-1", "epoch": "one", "rng_state": null, "model": {}}', "'epoch' must be"),
        (b'{"format": "minigrad-checkpoint-1", "epoch": 1, "rng_state": null, "model": [1]}', "'model' must be"),
        (b'{"format": "minigrad-checkpoint-1", "epoch": 1, "model": {}}', "no 'rng_state'"),
    ],
    ids=[
        "not-utf8",
        "cut-json",
        "deep-list",
        "deep-dict",
        "not-object",
        "missing-array",
        "unhashable-array-name",
        "items-not-list",
        "unhashable-key",
        "tuple-not-list",
        "old-format",
        "epoch-text",
        "model-list",
        "no-rng",
    ],
)
def test_malformed_checkpoints_are_corrupt_file_errors(tmp_path, text, message):
    from minigrad.io import CorruptFileError

    path = _checkpoint_with_structure(tmp_path / "c.safetensors", text)
    with pytest.raises(CorruptFileError, match=message) as error:
        load_checkpoint(path)
    assert str(error.value).startswith(f"{path}: ")


def test_checkpoint_that_is_not_safetensors_names_the_file(tmp_path):
    from minigrad.io import CorruptFileError

    path = tmp_path / "c.safetensors"
    path.write_bytes(b"PK\x03\x04 a zip, not a checkpoint")
    with pytest.raises(CorruptFileError, match="not a valid safetensors file") as error:
        load_checkpoint(path)
    assert str(error.value).startswith(f"{path}: ")


def _tampered_checkpoint(tmp_path, change):
    """A real checkpoint of a tiny trainer whose structure ``change`` rewrote."""
    import json

    model = mg.nn.Linear(2, 2)
    trainer = Trainer(model, mg.optim.SGD(model.parameters(), lr=0.1), F.cross_entropy)
    path = trainer.save_checkpoint(tmp_path / "good.safetensors")
    arrays = {name: np.asarray(getattr(a, "data", a)) for name, a in mg.load(path).items()}
    structure = json.loads(arrays.pop("checkpoint.json").tobytes())
    change(structure)
    return _checkpoint_with_structure(tmp_path / "c.safetensors", json.dumps(structure).encode(), **arrays), trainer


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda s: s.__setitem__("history", [1, 2]), "'history' must be a dict, found list"),
        (lambda s: s.__setitem__("extra", [1]), "'extra' must be a dict, found list"),
        (lambda s: s.__setitem__("callbacks", "abc"), "'callbacks' must be a list, found str"),
        (lambda s: s.__setitem__("optimizer", [1]), "'optimizer' must be a dict, found list"),
        (lambda s: s.__setitem__("epoch", -5), "'epoch' must not be negative"),
        (lambda s: s["extra"].__setitem__("global_step", "abc"), "does not fit this trainer \\(ValueError"),
        (lambda s: s.__setitem__("callbacks", [{"x": 1}]), "does not fit this trainer \\(KeyError: callback"),
        (lambda s: s.__setitem__("rng_state", "x"), "does not fit this trainer \\(TypeError"),
        (lambda s: s.__setitem__("history", {"rows": [1, "x"]}), "does not fit this trainer \\(TypeError"),
        (lambda s: s["model"].pop("bias"), "(?s)does not fit this trainer \\(KeyError: .*missing keys: bias"),
    ],
    ids=[
        "history-list",
        "extra-list",
        "callbacks-text",
        "optimizer-list",
        "negative-epoch",
        "step-text",
        "callback-entry",
        "rng-text",
        "history-rows",
        "model-missing-key",
    ],
)
def test_a_checkpoint_whose_parts_do_not_fit_is_a_corrupt_file_error(tmp_path, change, message):
    from minigrad.io import CorruptFileError

    path, trainer = _tampered_checkpoint(tmp_path, change)
    with pytest.raises(CorruptFileError, match=message) as error:
        trainer.load_checkpoint(path)
    assert str(error.value).startswith(f"{path}: ")
