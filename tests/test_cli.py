"""The `minigrad` command end to end on the built-in shapes (short runs)."""

import csv
import re

import pytest

from minigrad import cli
from minigrad.cli import main

from isolated import run_python


def test_train_then_evaluate_on_shapes(tmp_path, capsys):
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--dataset",
                "shapes:480",
                "--epochs",
                "2",
                "--batch-size",
                "32",
                "--out",
                str(out),
                "--augment",
                "flip,crop",
                "--early-stopping",
                "3",
                "--schedule",
                "cosine",
            ]
        )
        == 0
    )
    lines = capsys.readouterr().out.strip().splitlines()
    last = re.fullmatch(r"test accuracy: (\d\.\d{4})", lines[-1])
    assert last, lines[-1]
    assert float(last.group(1)) > 0.3  # five classes: well above chance after two short epochs
    assert sum(line.startswith("epoch ") for line in lines) == 2
    assert (out / "best.safetensors").exists()
    with open(out / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["1", "2"] and float(rows[1]["lr"]) < float(rows[0]["lr"])
    if (out / "curves.png").exists():
        assert (out / "curves.png").read_bytes()[:4] == b"\x89PNG"
    else:
        pytest.importorskip("matplotlib", reason="curves.png needs matplotlib")

    assert main(["evaluate", "--checkpoint", str(out / "best.safetensors")]) == 0
    evaluated = capsys.readouterr().out.strip().splitlines()
    assert evaluated[-1] == lines[-1]  # the same weights, statistics and test split give the same accuracy
    assert any("confusion matrix" in line for line in evaluated)


@pytest.mark.parametrize(
    "model,extra",
    [
        ("mlp", ["--norm", "batch", "--dropout", "0.2", "--init", "he"]),
        ("resnet8", ["--norm", "group", "--optimizer", "nesterov"]),
    ],
)
def test_other_models_and_options_train(tmp_path, capsys, model, extra):
    assert (
        main(
            [
                "train",
                "--model",
                model,
                "--dataset",
                "shapes:160",
                "--epochs",
                "1",
                "--out",
                str(tmp_path),
                "--train-size",
                "96",
            ]
            + extra
        )
        == 0
    )
    assert re.fullmatch(r"test accuracy: \d\.\d{4}", capsys.readouterr().out.strip().splitlines()[-1])


def test_clear_errors(tmp_path, capsys):
    assert main(["train", "--dataset", "nosuch", "--out", str(tmp_path)]) == 2
    assert "unknown dataset 'nosuch'" in capsys.readouterr().err
    assert main(["train", "--dataset", "mnist:" + str(tmp_path / "missing"), "--out", str(tmp_path)]) == 2
    assert "train-images-idx3-ubyte" in capsys.readouterr().err
    assert main(["evaluate", "--checkpoint", str(tmp_path / "none.safetensors")]) == 2
    assert "cannot read checkpoint" in capsys.readouterr().err


def test_info_runs_as_a_module():
    result = run_python("minigrad.cli", "info", module=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("minigrad ") and "optional:" in result.stdout


def test_without_scikit_learn_the_default_dataset_is_shapes(monkeypatch):
    real = cli.importlib.util.find_spec
    monkeypatch.setattr(cli.importlib.util, "find_spec", lambda name: None if name == "sklearn" else real(name))
    assert cli.default_dataset() == "shapes"
    monkeypatch.undo()
    assert cli.default_dataset() == ("digits" if real("sklearn") else "shapes")


def test_corrupt_dataset_and_checkpoint_files_are_clear_errors(tmp_path, capsys):
    data = tmp_path / "mnist"
    data.mkdir()
    for prefix in ("train", "t10k"):
        (data / f"{prefix}-images-idx3-ubyte").write_bytes(
            bytes([0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 2]) + bytes(4)
        )
        (data / f"{prefix}-labels-idx1-ubyte").write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 1, 7]))
    (data / "train-images-idx3-ubyte").unlink()
    (data / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b not really gzip")
    assert main(["train", "--dataset", f"mnist:{data}", "--out", str(tmp_path)]) == 2
    assert f"{data / 'train-images-idx3-ubyte.gz'}: not a valid gzip file" in capsys.readouterr().err
    (tmp_path / "bad.safetensors").write_bytes(b"\x08" + bytes(7) + b"{}{}{}{}")
    assert main(["evaluate", "--checkpoint", str(tmp_path / "bad.safetensors")]) == 2
    assert "bad.safetensors: not a valid safetensors file" in capsys.readouterr().err


def test_info_piped_into_a_reader_that_stops_early_is_not_an_error():
    """`minigrad info | head -1`: the closed pipe ends the command quietly, as Unix tools do."""
    import subprocess
    import sys

    from isolated import PACKAGE_ROOT, child_environment

    child = subprocess.Popen(
        [sys.executable, "-m", "minigrad.cli", "info"],
        env=child_environment(), cwd=PACKAGE_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    first = child.stdout.readline()
    child.stdout.close()  # the reader stops after one line
    _, err = child.communicate(timeout=60)
    assert first.startswith(b"minigrad ")
    assert child.returncode == 0 and b"error" not in err, err
