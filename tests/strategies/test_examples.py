"""Each strategy's example runs to completion in --smoke mode (on scikit-learn's digits)."""

import importlib.util
import runpy
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NEEDS = {"tune.py": ["sklearn", "optuna"]}


@pytest.mark.parametrize(
    "name",
    [
        "transfer_learning.py",
        "multitask.py",
        "curriculum.py",
        "distillation.py",
        "adversarial.py",
        "tune.py",
        "pretraining.py",
    ],
)
def test_example_runs_in_smoke_mode(name, monkeypatch, capsys):
    for module in NEEDS.get(name, ["sklearn"]):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"examples/{name} needs {module} (pip install '.[datasets,tune]')")
    monkeypatch.setattr(sys, "argv", [name, "--smoke"])
    runpy.run_path(str(EXAMPLES / name), run_name="__main__")
    out = capsys.readouterr().out
    assert "accuracy" in out
