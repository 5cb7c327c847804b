"""Fuzzes every _C and _C.ref entry point with hostile arguments (boundary_fuzz.py) in a child
process: the child may only return results or raise Python exceptions; dying by a signal (a
segfault, an abort from the sanitizers or the OpenMP runtime) fails the test.

Deterministic (hypothesis derandomized, a fixed number of examples per entry point); fewer
examples under AddressSanitizer (.ci/run preloads libasan), where each call is slower."""

import json
import os

import boundary_fuzz
from isolated import run_python

UNDER_ASAN = "libasan" in os.environ.get("LD_PRELOAD", "")
EXAMPLES = 10 if UNDER_ASAN else 30


def test_every_entry_point_has_a_fuzz_generator():
    bases = {name[4:] if name.startswith("ref.") else name for name in boundary_fuzz.entry_points()}
    assert bases - boundary_fuzz.COVERED == set(), "entry points boundary_fuzz.valid() cannot call"
    assert boundary_fuzz.COVERED - bases == set(), "generators for entry points that no longer exist"


def test_fuzzing_every_entry_point_raises_or_returns_never_crashes():
    env = dict(OMP_NUM_THREADS="2")
    if UNDER_ASAN:  # a huge (refused-later) allocation returns null -> MemoryError, not an abort
        env["ASAN_OPTIONS"] = ":".join(
            filter(None, [os.environ.get("ASAN_OPTIONS", ""), "allocator_may_return_null=1"])
        )
    done = run_python("boundary_fuzz", str(EXAMPLES), module=True, timeout=600, **env)
    assert done.returncode >= 0, (
        f"the fuzzed child died by signal {-done.returncode}:\n{done.stdout[-4000:]}{done.stderr[-4000:]}"
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["unexpected"] == [], "\n".join(report["unexpected"])
    assert done.returncode == 0, done.stderr[-4000:]
    summary = report["summary"]
    assert sorted(summary) == boundary_fuzz.entry_points()
    for name, outcomes in summary.items():
        assert outcomes.get("ok", 0) > 0, f"{name}: no valid call reached the kernel: {outcomes}"
        if name in boundary_fuzz.NO_ARGUMENTS:
            continue
        assert sum(outcomes.values()) >= EXAMPLES // 2, (name, outcomes)
        assert set(outcomes) - {"ok"}, f"{name}: no hostile call was refused: {outcomes}"
