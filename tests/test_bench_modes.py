"""bench/'s thread sweep and contention mode: argument parsing and the report arithmetic with
hand-computed numbers (no processes), then one short contention run end to end."""

import glob
import json
import math
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.append(ROOT)  # after site-packages: an installed minigrad stays the one imported here

from bench import contention, run  # noqa: E402 (needs the path above)


# ---------------------------------------------------------------------------- --threads
@pytest.mark.parametrize(
    "text, counts",
    [("4", [4]), ("1,2,4", [1, 2, 4]), (" 8 , 1 ", [8, 1]), ("default", ["default"]), ("1,default", [1, "default"])],
)
def test_thread_lists(text, counts):
    assert run.parse_threads(text) == counts


@pytest.mark.parametrize(
    "text, message",
    [
        ("0", "thread counts must be positive, got 0"),
        ("2,-1", "thread counts must be positive, got -1"),
        ("a", "'a' is neither a thread count nor 'default'"),
        ("1.5", "'1.5' is neither"),
        ("1,,2", "'' is neither"),
        ("2,2", "2 is listed twice"),
        ("default,default", "default is listed twice"),
    ],
)
def test_bad_thread_lists(text, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        run.parse_args(["--threads", text])
    assert exit_.value.code == 2
    assert f"argument --threads: {message}" in capsys.readouterr().err


def test_thread_defaults_per_mode():
    assert run.parse_args([]).threads == [run.cpu_count()]  # as before: every CPU this process may use
    assert run.parse_args(["--contention"]).threads == ["default"]  # as a user who sets nothing runs
    assert run.parse_args(["--contention", "--threads", "2"]).threads == [2]
    assert run.threads_label([1, 2, "default"]) == "1,2,default"


@pytest.mark.parametrize("argv", [["--window", "0"], ["--hogs", "0"], ["--repeat", "0"], ["--sides", "minigrad,jax"]])
def test_bad_mode_options(argv, capsys):
    with pytest.raises(SystemExit):
        run.parse_args(["--contention"] + argv)
    assert "error:" in capsys.readouterr().err


# ---------------------------------------------------------------------------- arithmetic
def test_p95_is_nearest_rank():
    assert contention.p95([7.0]) == 7.0
    assert contention.p95([40.0, 10.0, 30.0, 20.0]) == 40.0  # rank ceil(3.8) = 4
    assert contention.p95(list(range(1, 21))) == 19  # rank ceil(19.0) = 19
    assert contention.p95(list(range(100, 0, -1))) == 95


def test_summary_of_one_copy():
    s = contention.summarize([[10.0, 20.0, 30.0, 40.0]])
    assert s == {
        "steps": 4,
        "median_ms": 25.0,
        "mean_ms": 25.0,
        "p95_ms": 40.0,
        "steps_per_s": 40.0,
    }  # 4 steps in 0.1 s


def test_twin_summary_against_quiet():
    quiet = contention.summarize([[10.0, 10.0, 10.0, 10.0]])  # 100 steps/s
    both = contention.summarize([[20.0, 20.0, 20.0, 20.0], [40.0, 40.0]], quiet)
    assert both["steps"] == 6
    assert both["median_ms"] == 20.0
    assert both["mean_ms"] == pytest.approx(160 / 6)
    assert both["p95_ms"] == 40.0
    assert both["steps_per_s"] == pytest.approx(50 + 25)  # 4 steps in 0.08 s, 2 in 0.08 s
    assert both["mean_vs_quiet"] == pytest.approx(16 / 6)
    assert both["rate_vs_quiet"] == pytest.approx(0.75)  # two copies together: 3/4 of one alone


def test_describe_converts_seconds_and_measures_overlap():
    def window(step_s, n, start):
        return {"steps": [step_s] * n, "start": start, "end": start + step_s * n}

    entry = contention.describe(
        {
            "quiet": [window(0.010, 10, 0.0)],
            "hog": [window(0.025, 4, 10.0)],
            "twin": [window(0.020, 5, 20.0), window(0.025, 4, 20.01)],
        },
        hogs=1,
    )
    assert entry["quiet"]["summary"]["rate_vs_quiet"] == pytest.approx(1.0)
    assert entry["hog"]["summary"]["mean_vs_quiet"] == pytest.approx(2.5)
    assert entry["hog"]["hogs"] == 1
    twin = entry["twin"]
    assert [c["summary"]["steps"] for c in twin["copies"]] == [5, 4]
    assert twin["summary"]["rate_vs_quiet"] == pytest.approx((50 + 40) / 100)
    assert twin["overlap"] == pytest.approx((20.1 - 20.01) / (20.11 - 20.0))
    table = contention.markdown(
        {
            "machine": {
                "date": "d",
                "cpu": "c",
                "cpus": 2,
                "threads": ["default"],
                "load_average_start": (0, 0, 0),
                "load_average_end": (0, 0, 0),
            },
            "settings": {"warmup": 2, "window": 0.1, "hogs": 1},
            "runs": [
                {
                    "threads": "default",
                    "sides": {},
                    "results": [{"name": "w", "sides": {"minigrad": entry}, "errors": {}}],
                }
            ],
        }
    )
    assert "| w | quiet | 10 | 10 | 10 | 10 | 1.00 | 1.00 |" in table
    assert "|  | twin, both | 9 |" in table and "| 0.90 |" in table


def test_sweep_table_speed_up():
    def result(mg_ms, torch_ms):
        sides = {"minigrad": {"median_ms": mg_ms}, "torch": {"median_ms": torch_ms}}
        return {"name": "w", "sides": sides, "ratios": {"minigrad/torch": mg_ms / torch_ms}, "errors": {}}

    runs = [{"threads": 1, "results": [result(40.0, 20.0)]}, {"threads": 2, "results": [result(25.0, 12.5)]}]
    lines = run.table_sweep(runs)
    assert (
        lines[1]
        == "| workload | mg ms @1 | torch ms @1 | mg/torch @1 | mg ms @2 | torch ms @2 | mg/torch @2 | mg speed-up @2 |"
    )
    assert lines[3] == "| w | 40 | 20 | 2.00 | 25 | 12.5 | 2.00 | 1.60 |"


# ---------------------------------------------------------------------------- end to end
def test_contention_smoke(tmp_path):
    argv = ["--contention", "--filter", "lenet5_b64_sgd_momentum", "--window", "0.3", "--sides", "minigrad"]
    assert run.main(argv + ["--out", str(tmp_path)]) == 0
    (path,) = glob.glob(str(tmp_path / "bench-contention-*-tdefault.json"))
    with open(path) as f:
        report = json.load(f)
    (result,) = report["runs"][0]["results"]
    assert result["errors"] == {}
    entry = result["sides"]["minigrad"]
    assert set(entry) == {"quiet", "hog", "twin"}
    assert all(entry[s]["summary"]["steps"] > 0 for s in entry)
    assert [len(c["steps_ms"]) > 0 for c in entry["twin"]["copies"]] == [True, True]
    assert entry["twin"]["overlap"] > 0.5  # the copies were timed together, not one after the other
    assert math.isclose(entry["quiet"]["summary"]["mean_vs_quiet"], 1.0)
    assert os.path.exists(path[: -len(".json")] + ".md")
