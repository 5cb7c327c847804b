"""Contention mode of the runner: how a training step fares on a shared machine.

    python -m bench --contention --filter training_step [--window 5] [--hogs 1] [--threads N]

For each workload and side, steps are timed one by one over a fixed window (--window seconds,
after --warmup untimed steps) in three situations:

    quiet  nothing else of ours runs;
    hog    --hogs processes spin in ``while True: pass`` beside it;
    twin   a second copy of the same step (same side, same threads) runs in its own worker;
           both warm up together, then open their windows at the same moment and both are reported.

Without --threads no side is given a thread count (no OMP_NUM_THREADS, no set_num_threads):
each library runs as a user who sets nothing gets it, which is what meets the other processes
of a shared machine. The sides take turns per situation (quiet minigrad, quiet torch, hog
minigrad, ...), each in its own worker process as in the runner's other mode.
"""

from __future__ import annotations

import contextlib
import math
import statistics
import subprocess
import sys
import time

from bench.run import SIDES, ask_all, errors_of, header, setup_of, start_workers

SETTINGS = ("filter", "threads", "warmup", "window", "hogs")  # the report keeps these
SITUATIONS = ("quiet", "hog", "twin")
HOG = "print('spinning', flush=True)\nwhile True: pass"
# Both copies get the window command this long before their window opens, so a worker that is
# slow to wake still starts on time.
START_MARGIN_S = 0.1
# An idle OpenMP pool spins a while before it sleeps; let it, so a side's leftover spinning
# does not land in the next window.
SETTLE_S = 0.1


# ------------------------------------------------------------------------------ arithmetic
def p95(values):
    """Nearest-rank 95th percentile: the smallest value with at least 95% of all at or below it."""
    ordered = sorted(values)
    return ordered[math.ceil(0.95 * len(ordered)) - 1]


def summarize(copies, quiet=None):
    """Step times (ms) of one or more copies that ran at the same time, pooled; `steps_per_s`
    adds the copies' rates (each its steps over the sum of its step times). Against `quiet` (the
    same side's quiet summary): mean time and rate as fractions of the quiet ones."""
    pooled = [t for times in copies for t in times]
    summary = {
        "steps": len(pooled),
        "median_ms": statistics.median(pooled),
        "mean_ms": statistics.fmean(pooled),
        "p95_ms": p95(pooled),
        "steps_per_s": sum(len(times) / (sum(times) / 1e3) for times in copies),
    }
    if quiet:
        summary["mean_vs_quiet"] = summary["mean_ms"] / quiet["mean_ms"]
        summary["rate_vs_quiet"] = summary["steps_per_s"] / quiet["steps_per_s"]
    return summary


def overlap(windows):
    """Share of the windows' whole span during which all of them were timing (1: exactly together)."""
    starts, ends = [w["start"] for w in windows], [w["end"] for w in windows]
    return max(0.0, min(ends) - max(starts)) / (max(ends) - min(starts))


def describe(windows_by_situation, hogs):
    """The report's entry for one side: every step time and the summaries, per situation."""
    as_ms = {s: [[t * 1e3 for t in w["steps"]] for w in ws] for s, ws in windows_by_situation.items()}
    quiet = summarize(as_ms["quiet"])
    entry = {}
    for situation, windows in windows_by_situation.items():
        copies = [
            {"steps_ms": times, "start": w["start"], "end": w["end"], "summary": summarize([times], quiet)}
            for times, w in zip(as_ms[situation], windows)
        ]
        entry[situation] = {"summary": summarize(as_ms[situation], quiet), "copies": copies}
        if situation == "hog":
            entry[situation]["hogs"] = hogs
        if len(windows) > 1:
            entry[situation]["overlap"] = overlap(windows)
    return entry


# -------------------------------------------------------------------------------- running
@contextlib.contextmanager
def hogs(n):
    """`n` busy-looping processes for the length of the with-block, killed however it ends."""
    procs = []
    try:
        for _ in range(n):
            procs.append(subprocess.Popen([sys.executable, "-c", HOG], stdout=subprocess.PIPE, text=True))
        for proc in procs:
            proc.stdout.readline()  # it spins once it has said so: the window never opens before
        yield procs
    finally:
        for proc in procs:
            proc.kill()
        for proc in procs:
            proc.wait()
            proc.stdout.close()


def run_situation(situation, main, twin, args):
    """The timed windows of one situation: [main's] or, for "twin", [main's, twin's]."""
    copies = [main, twin] if situation == "twin" else [main]
    time.sleep(SETTLE_S)
    with hogs(args.hogs if situation == "hog" else 0):
        # Warm up under the situation's load, the copies together, so caches and thread pools
        # are in the state the window measures.
        ask_all(copies, op="time", calls=max(args.warmup, 1))
        return ask_all(copies, op="window", seconds=args.window, start_at=time.time() + START_MARGIN_S)


def contend(workload, mains, twins, args, log):
    result = {"name": workload.name, "group": workload.group, "sides": {}, "errors": {}}

    def fail(side, error):
        result["errors"][side] = str(error).strip().splitlines()[-1]
        log(f"  {side}: {result['errors'][side]}")

    pairs = {}
    for side, main in mains.items():
        if setup_of(workload, side) is None:
            continue
        try:
            if side not in twins:
                raise RuntimeError("its twin worker did not start")
            ask_all([main, twins[side]], op="setup", name=workload.name)
            pairs[side] = (main, twins[side])
        except RuntimeError as e:
            fail(side, e)
    windows = {side: {} for side in pairs}
    for situation in SITUATIONS:  # sides take turns, so slow drifts of the machine hit both alike
        for side in list(pairs):
            log(f"  {side}: {situation}")
            try:
                windows[side][situation] = run_situation(situation, *pairs[side], args)
            except RuntimeError as e:
                fail(side, e)
                del pairs[side]
    for side, by_situation in windows.items():
        if "quiet" in by_situation:
            result["sides"][side] = describe(by_situation, args.hogs)
    return result


def run(args, selected, sides, log):
    """Per --threads setting, every selected workload on every side in the three situations."""
    runs = []
    for threads in args.threads:
        with contextlib.ExitStack() as stack:
            mains = start_workers(sides, threads, stack, log, taking_turns=False)
            twins = start_workers(list(mains), threads, stack, log, taking_turns=False)
            results = []
            for i, w in enumerate(selected, 1):
                log(f"[{i}/{len(selected)}] {w.name}, threads {threads}")
                results.append(contend(w, mains, twins, args, log))
            runs.append({"threads": threads, "sides": {s: w.facts for s, w in mains.items()}, "results": results})
    return runs


# --------------------------------------------------------------------------------- report
COLUMNS = (  # header, summary key, format
    ("steps", "steps", "{}"),
    ("median ms", "median_ms", "{:.4g}"),
    ("mean ms", "mean_ms", "{:.4g}"),
    ("p95 ms", "p95_ms", "{:.4g}"),
    ("mean/quiet", "mean_vs_quiet", "{:.2f}"),
    ("rate/quiet", "rate_vs_quiet", "{:.2f}"),
)


LABELS = ("quiet", "hog", "twin, copy 1", "twin, copy 2", "twin, both")  # the table's rows per workload


def rows_of(entry):
    """{label: summary} of one side's entry: the situations, the twin's copies apart too."""
    rows = {}
    for situation, e in entry.items():
        if situation == "twin":
            rows.update({f"twin, copy {i}": c["summary"] for i, c in enumerate(e["copies"], 1)})
            rows["twin, both"] = e["summary"]
        else:
            rows[situation] = e["summary"]
    return rows


def markdown(report):
    settings, runs = report["settings"], report["runs"]
    lines = header(
        report,
        "minigrad contention benchmark",
        f"- settings: per situation {settings['warmup']} warm-up steps, then steps timed one by one for "
        f"{settings['window']} s; hog: {settings['hogs']} busy-looping process(es) beside the step; twin: a "
        "second copy of the step in its own process, timed over the same window",
    )
    lines.append(
        "- steps: steps completed in the window; median/mean/p95: ms per step; mean/quiet: mean over the "
        "side's quiet mean (above 1: slower); rate/quiet: steps per second (of both copies for 'twin, both') "
        "over one quiet copy's (2 would be two copies each at full speed)"
    )
    for run in runs:
        results = run["results"]
        sides = [s for s in SIDES if any(s in r["sides"] for r in results)]
        if len(runs) > 1:
            lines += ["", f"## threads: {run['threads']}"]
        head = ["workload", "situation"] + [
            f"{'mg' if s == 'minigrad' else s} {h}" for s in sides for h, _, _ in COLUMNS
        ]
        lines += ["", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        overlaps = []
        for r in results:
            rows = {s: rows_of(e) for s, e in r["sides"].items()}
            labels = [label for label in LABELS if any(label in by_label for by_label in rows.values())]
            for i, label in enumerate(labels):
                row = [r["name"] if i == 0 else "", label]
                for s in sides:
                    summary = rows.get(s, {}).get(label, {})
                    row += [fmt.format(summary[key]) if key in summary else "-" for _, key, fmt in COLUMNS]
                lines.append("| " + " | ".join(row) + " |")
            overlaps += [f"{r['name']} {s} {e['twin']['overlap']:.0%}" for s, e in r["sides"].items() if "twin" in e]
        if overlaps:
            lines += ["", "Twin windows' overlap (share of their span both copies were timing): " + ", ".join(overlaps)]
    return "\n".join(lines + errors_of(runs)) + "\n"
