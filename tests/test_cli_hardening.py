"""The command line never answers a user's mistake or a bad file with a traceback: it prints
``minigrad: error: ...`` on stderr and exits with status 2 (argparse's convention). Each case
runs the real command in a fresh interpreter."""

import csv
import pickle

import numpy as np
import pytest

from minigrad import cli
from minigrad.cli import main
from minigrad.train import load_checkpoint

from isolated import run_python


def minigrad(*args, cwd=None):
    return run_python("minigrad.cli", *map(str, args), module=True)


def assert_user_error(result, *words):
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout, result.stderr
    assert "error: " in result.stderr, result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


QUICK = ["--dataset", "shapes:160", "--epochs", "1", "--train-size", "96", "--model", "mlp"]


@pytest.mark.parametrize(
    "options,words",
    [
        (["--lr", "-0.01"], ["--lr", "-0.01"]),
        (["--lr", "nan"], ["--lr", "nan"]),
        (["--lr", "inf"], ["--lr", "inf"]),
        (["--weight-decay", "nan"], ["--weight-decay", "nan"]),
        (["--weight-decay", "-1"], ["--weight-decay", "-1"]),
        (["--dataset", "shapes:abc"], ["shapes:abc"]),
        (["--dataset", "shapes:-5"], ["shapes:-5"]),
        (["--epochs", "0"], ["--epochs", "0"]),
        (["--batch-size", "-4"], ["--batch-size", "-4"]),
        (["--threads", "-3"], ["--threads", "-3"]),
        (["--workers", "-1"], ["--workers", "-1"]),
        (["--early-stopping", "-2"], ["--early-stopping", "-2"]),
        (["--seed", "-1"], ["--seed", "-1"]),
        (["--dropout", "nan"], ["--dropout", "nan"]),
        (["--dataset", "mnist:/nonexistent/dir"], ["/nonexistent/dir"]),
    ],
)
def test_bad_train_options_are_user_errors(tmp_path, options, words):
    assert_user_error(minigrad("train", *QUICK, "--out", tmp_path / "run", *options), *words)
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_an_out_that_is_a_file_is_a_user_error(tmp_path):
    existing = tmp_path / "notes.txt"
    existing.write_text("keep me")
    assert_user_error(minigrad("train", *QUICK, "--out", existing), str(existing), "not a directory")
    assert existing.read_text() == "keep me"


def test_corrupt_and_hostile_datasets_are_user_errors(tmp_path):
    mnist = tmp_path / "mnist"
    mnist.mkdir()
    for name in (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ):
        (mnist / name).write_bytes(b"\x00\x00\x08\x03garbage")
    assert_user_error(minigrad("train", "--dataset", f"mnist:{mnist}", "--out", tmp_path / "a"), "train-images")

    cifar = tmp_path / "cifar"
    cifar.mkdir()

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (cifar / name).write_bytes(pickle.dumps(Evil()))
    result = minigrad("train", "--dataset", f"cifar10:{cifar}", "--out", tmp_path / "b")
    assert_user_error(result, "builtins.print")  # (naming the file is the readers' job)
    assert "pwned" not in result.stdout


def test_bad_checkpoints_are_user_errors(tmp_path):
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\xff" * 64)
    assert_user_error(minigrad("evaluate", "--checkpoint", garbage), str(garbage))
    assert_user_error(minigrad("evaluate", "--checkpoint", tmp_path / "missing.safetensors"), "missing.safetensors")
    assert_user_error(minigrad("evaluate", "--checkpoint", tmp_path), str(tmp_path))
    import minigrad as mg

    mg.save({"w": np.zeros(2, np.float32)}, tmp_path / "weights.safetensors")
    assert_user_error(minigrad("evaluate", "--checkpoint", tmp_path / "weights.safetensors"), "weights.safetensors")


def test_a_checkpoint_with_a_hostile_config_is_a_user_error(tmp_path):
    import minigrad as mg
    from minigrad.train import save_checkpoint

    model = mg.nn.Linear(2, 2)
    save_checkpoint(tmp_path / "odd.safetensors", model, extra={"config": {"model": "lenet5", "image_shape": "x"}})
    assert_user_error(minigrad("evaluate", "--checkpoint", tmp_path / "odd.safetensors"), "odd.safetensors")


@pytest.mark.parametrize(
    "options,words", [(["--trials", "0"], ["--trials"]), (["--storage", "nosuchdb://x"], ["nosuchdb"])]
)
def test_bad_tune_options_are_user_errors(options, words):
    pytest.importorskip("optuna")
    assert_user_error(minigrad("tune", "--dataset", "shapes:120", "--epochs", "1", "--trials", "1", *options), *words)


# ---------------------------------------------------------------- runs are never silently replaced
def _history(directory):
    with open(directory / "history.csv") as f:
        return [{k: v for k, v in row.items() if k != "time"} for row in csv.DictReader(f)]


def test_a_second_run_into_the_same_out_goes_to_a_fresh_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", *QUICK]) == 0  # the README's command, twice in a row
    first = (tmp_path / "minigrad-run" / "best.safetensors").read_bytes()
    capsys.readouterr()
    assert main(["train", *QUICK, "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "minigrad-run-2" in out.splitlines()[0]  # said where, before training
    assert (tmp_path / "minigrad-run" / "best.safetensors").read_bytes() == first
    assert (tmp_path / "minigrad-run-2" / "best.safetensors").exists()
    assert main(["train", *QUICK]) == 0
    assert (tmp_path / "minigrad-run-3" / "history.csv").exists()
    assert main(["train", *QUICK, "--overwrite"]) == 0  # asked for: replaces minigrad-run
    assert (tmp_path / "minigrad-run" / "best.safetensors").read_bytes() != first
    assert not (tmp_path / "minigrad-run-4").exists()


class Interrupt(cli.PrintEpochs):
    """Ctrl-C right after the second epoch's line."""

    def on_epoch_end(self, trainer, epoch, logs):
        super().on_epoch_end(trainer, epoch, logs)
        if epoch == 2:
            raise KeyboardInterrupt


def test_resume_continues_an_interrupted_run_bit_for_bit(tmp_path, capsys, monkeypatch):
    options = [
        "--dataset",
        "shapes:240",
        "--epochs",
        "4",
        "--model",
        "mlp",
        "--dropout",
        "0.2",
        "--schedule",
        "plateau",
        "--early-stopping",
        "3",
    ]
    assert main(["train", *options, "--out", str(tmp_path / "full")]) == 0
    monkeypatch.setattr(cli, "PrintEpochs", Interrupt)
    assert main(["train", *options, "--out", str(tmp_path / "cut")]) == 130
    assert "--resume" in capsys.readouterr().err
    assert len(_history(tmp_path / "cut")) == 2
    monkeypatch.undo()
    assert main(["train", "--resume", "--out", str(tmp_path / "cut")]) == 0  # the run's own options
    lines = capsys.readouterr().out.strip().splitlines()
    assert _history(tmp_path / "cut") == _history(tmp_path / "full")
    for name in ("best", "last"):
        full, cut = (load_checkpoint(tmp_path / d / f"{name}.safetensors") for d in ("full", "cut"))
        assert full["epoch"] == cut["epoch"]
        for key, value in full["model"].items():
            np.testing.assert_array_equal(cut["model"][key].data, value.data)
    assert lines[-1].startswith("test accuracy: ")


def test_resume_needs_a_run_and_refuses_other_options(tmp_path):
    assert_user_error(minigrad("train", "--resume", "--out", tmp_path / "empty"), "nothing to resume")
    assert_user_error(minigrad("train", "--resume", "--overwrite", "--out", tmp_path), "--overwrite")


def test_an_empty_out_or_split_is_a_user_error(tmp_path):
    assert_user_error(minigrad("train", *QUICK, "--out", ""), "--out")
    assert_user_error(minigrad("train", *QUICK, "--dataset", "shapes:1", "--out", tmp_path / "run"), "validation")
