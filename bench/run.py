"""Benchmark runner: minigrad against PyTorch (and numpy for GEMM), side by side.

    python -m bench [--filter REGEX] [--threads N[,N...]] [--repeat R] [--warmup W] [--min-time S]
    python -m bench --contention [--filter REGEX] [--window S] [--hogs N]   # see bench/contention.py

Workloads come from bench/workloads/*.py (each module's ``workloads()``; see bench/common.py).
Every side runs in its own worker process, started once: PyTorch bundles its own OpenMP
runtime, and two runtimes in one process spin against each other for the cores. For each
workload the workers build their inputs, calibrate how many calls make one sample last at
least --min-time, warm up, and then take turns (minigrad, torch, numpy, minigrad, torch, ...)
for --repeat rounds, so slow drifts of the machine hit every side alike. Reported: the median
time per call, the ratio minigrad / reference (below 1: minigrad is faster), and GFLOP/s or
GB/s. A JSON file and a markdown table with the machine's facts go to bench/results/.

``--threads 1,2,4`` sweeps thread counts: every workload is measured at each count, with fresh
workers per count (OpenMP fixes its pool size when a process starts), and the table gives each
count's times and ratios and minigrad's speed-up over its own 1-thread time. ``default`` in the
list leaves the thread count to each library, as a user who sets nothing gets it.

Sides: ``minigrad``, ``torch``, ``numpy`` (under this machine's OpenBLAS settings) and
``numpy-auto`` (OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE removed from that worker's
environment, so OpenBLAS picks its kernel for the CPU itself; run only where either is set).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import gc
import glob
import importlib
import json
import os
import pkgutil
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import traceback

if __package__ in (None, ""):  # `python bench/run.py`: make the `bench` package importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "bench", "results")
SIDES = ("minigrad", "torch", "numpy", "numpy-auto")
OPENBLAS_TUNING = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
SETTINGS = ("filter", "threads", "repeat", "warmup", "min_time", "pause")  # the report keeps these
REPLY = "@@bench "  # worker replies start with this; anything else on stdout is ignored
DEFAULT = "default"  # in a --threads list: set no thread count, each library picks its own
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


# ------------------------------------------------------------------------------ workloads
def discover(pattern: str | None = None):
    """All workloads of bench/workloads/*.py whose name or group matches `pattern`."""
    import bench.workloads as pkg

    found = []
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"bench.workloads.{info.name}")
        if hasattr(module, "workloads"):
            found.extend(module.workloads())
    if pattern:
        rx = re.compile(pattern)
        found = [w for w in found if rx.search(w.name) or rx.search(w.group)]
    return found


def setup_of(workload, side):
    if side == "minigrad":
        return workload.setup_minigrad
    if side == "torch":
        return workload.setup_torch
    return workload.setup_numpy  # both numpy sides


# --------------------------------------------------------------------------------- worker
def side_facts(side, threads):
    facts = {"side": side, "python": platform.python_version()}
    if side == "minigrad":
        import minigrad

        if threads != DEFAULT:
            minigrad.set_num_threads(threads)
        facts["minigrad"] = minigrad.__version__
        facts["threads_used"] = minigrad.get_num_threads()
        facts["backend_info"] = minigrad.backend_info()
    elif side == "torch":
        import torch

        if threads != DEFAULT:
            torch.set_num_threads(threads)
        facts["torch"] = torch.__version__
        facts["threads_used"] = torch.get_num_threads()
    else:
        import numpy

        facts["numpy"] = numpy.__version__
        facts["env"] = {k: os.environ.get(k) for k in OPENBLAS_TUNING + ("OPENBLAS_NUM_THREADS",)}
        facts["blas"] = blas_facts()
    return facts


def blas_facts():
    """Which BLAS numpy runs and, with threadpoolctl installed, which kernel OpenBLAS chose."""
    try:
        from threadpoolctl import threadpool_info

        return [
            {k: d.get(k) for k in ("internal_api", "version", "architecture", "num_threads", "filepath")}
            for d in threadpool_info()
            if d.get("user_api") == "blas"
        ]
    except ImportError:
        import numpy

        try:
            blas = numpy.show_config(mode="dicts")["Build Dependencies"]["blas"]
            return [
                {
                    "name": blas.get("name"),
                    "version": blas.get("version"),
                    "configuration": blas.get("openblas configuration"),
                    "architecture": "unknown (pip install threadpoolctl to see the kernel)",
                }
            ]
        except Exception as e:  # older numpy without mode="dicts"
            return [{"error": f"numpy.show_config: {e}"}]


def prefer_built_minigrad():
    """Imports minigrad from the source tree when it is built in place (cmake --build, pip install
    -e), else the installed one (`pip install .`, as CI does): the workers run from the source tree,
    whose un-built minigrad/ would otherwise shadow the installed package."""
    source = os.path.join(ROOT, "minigrad")
    if any(os.path.exists(p) for p in glob.glob(os.path.join(source, "_C*")) if p.endswith((".so", ".pyd"))):
        return
    saved = sys.path[:]
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.getcwd()) != ROOT]
    try:
        import minigrad  # noqa: F401 - cached in sys.modules for the workloads' own imports
    finally:
        sys.path[:] = saved


def worker(side, threads):
    """Serves one side: reads JSON commands on stdin, answers on stdout."""
    if side == "minigrad":
        prefer_built_minigrad()
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    sys.stdout = sys.stderr  # library chatter must not mix with the replies

    def reply(**message):
        out.write(REPLY + json.dumps(message) + "\n")

    workloads = {w.name: w for w in discover()}
    step = None
    try:
        reply(facts=side_facts(side, threads))
    except Exception:
        reply(error=traceback.format_exc())
        return
    for line in sys.stdin:
        cmd = json.loads(line)
        try:
            if cmd["op"] == "setup":
                step = None
                gc.collect()
                step = setup_of(workloads[cmd["name"]], side)()
                reply(ok=True)
            elif cmd["op"] == "calibrate":  # calls per sample so a sample lasts >= min_time
                calls = 1
                while True:
                    t = time.perf_counter()
                    for _ in range(calls):
                        step()
                    elapsed = time.perf_counter() - t
                    if elapsed >= cmd["min_time"] or calls >= 1 << 20:
                        break
                    calls = max(calls * 2, int(calls * cmd["min_time"] / max(elapsed, 1e-9) * 1.2))
                reply(calls=calls)
            elif cmd["op"] == "time":
                calls = cmd["calls"]
                t = time.perf_counter()
                for _ in range(calls):
                    step()
                reply(seconds=(time.perf_counter() - t) / calls)
            elif cmd["op"] == "window":
                reply(**timed_window(step, cmd["seconds"], cmd["start_at"]))
            elif cmd["op"] == "quit":
                return
        except Exception:
            step = None
            reply(error=traceback.format_exc(limit=8))


def timed_window(step, seconds, start_at):
    """Steps timed one by one for `seconds`, from the wall-clock time `start_at`: two workers
    given the same `start_at` time the same stretch of the machine (contention mode). The step
    that is running when the window closes is finished and counted; each step's time runs from
    the previous one's end, so the times add up to the whole window."""
    delay = start_at - time.time()
    if delay > 0:
        time.sleep(delay)
    start = time.time()
    t = time.perf_counter()
    end = t + seconds
    steps = []
    while t < end:
        step()
        now = time.perf_counter()
        steps.append(now - t)
        t = now
    return {"steps": steps, "start": start, "end": time.time()}


class Worker:
    def __init__(self, side, threads, taking_turns=True):
        self.side = side
        env = dict(os.environ)
        if taking_turns and side == "minigrad":
            # The sides take turns, so each minigrad sample starts right after another process
            # kept every CPU busy: minigrad's load sampling would see that (it looks back up to
            # 0.2 s) and shrink its teams for a load that has just stopped. Contention runs,
            # which measure the shrinking, keep it; a user's own setting wins.
            env.setdefault("MINIGRAD_SHRINK_WHEN_BUSY", "0")
        env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH")) if p)
        for var in THREAD_VARS:
            if threads == DEFAULT:  # a count inherited from this shell would not be the default
                env.pop(var, None)
            else:
                env[var] = str(threads)
        if side == "numpy-auto":
            for var in OPENBLAS_TUNING:
                env.pop(var, None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.run", "--worker", side, "--threads", str(threads)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.facts = self._read().get("facts")

    def _read(self):
        for line in self.proc.stdout:
            if line.startswith(REPLY):
                return json.loads(line[len(REPLY) :])
        raise RuntimeError(f"the {self.side} worker exited (code {self.proc.wait()})")

    def ask(self, **cmd):
        return ask_all([self], **cmd)[0]

    def close(self, kill=False):
        """Asks the worker to quit, or with `kill` ends it at once: a run that is failing or
        interrupted must not wait for a worker to finish its current command first."""
        try:
            if not kill:
                self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=30)
        except Exception:
            pass
        finally:  # also when interrupted while waiting: no worker outlives the run
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, kind, *_):
        self.close(kill=kind is not None)


def ask_all(workers, **cmd):
    """Sends `cmd` to every worker before reading any answer, so they all work at once. Every
    answer is read before an error is raised: an unread reply would answer the next command."""
    for w in workers:
        w.proc.stdin.write(json.dumps(cmd) + "\n")
    answers = [w._read() for w in workers]
    for answer in answers:
        if "error" in answer:
            raise RuntimeError(answer["error"])
    return answers


def start_workers(sides, threads, stack, log, taking_turns=True):
    """One worker per side with `threads`, each closed by `stack` (a contextlib.ExitStack) however
    the run ends; a side whose worker cannot start is left out. `taking_turns`: the sides' samples
    alternate (not a contention run, where they overlap on purpose)."""
    workers = {}
    for side in sides:
        try:
            w = stack.enter_context(Worker(side, threads, taking_turns))
            if w.facts is None:
                raise RuntimeError("no facts")
            workers[side] = w
        except Exception as e:
            log(f"{side}: worker failed to start ({e}); side skipped")
    return workers


# ----------------------------------------------------------------------------- orchestra
def cpu_count():
    """The CPUs this process may run on (a container's or taskset's share, not the machine's)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def machine_facts(threads):
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except Exception:
        commit = None
    return {
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
        "host": platform.node(),
        "cpu": cpu,
        "cpus": cpu_count(),
        "threads": threads,
        "platform": platform.platform(),
        "git_commit": commit,
        "load_average_start": os.getloadavg(),
        "env": {k: os.environ.get(k) for k in OPENBLAS_TUNING + ("OMP_NUM_THREADS",)},
    }


def measure(workload, workers, args, log):
    result = {
        "name": workload.name,
        "group": workload.group,
        "flop": workload.flop,
        "bytes": workload.bytes,
        "sides": {},
        "errors": {},
    }
    active = []
    for side, w in workers.items():
        if setup_of(workload, side) is None:
            continue
        try:
            w.ask(op="setup", name=workload.name)
            calls = w.ask(op="calibrate", min_time=args.min_time)["calls"]
            for _ in range(args.warmup):
                w.ask(op="time", calls=calls)
            active.append((side, w, calls))
        except RuntimeError as e:
            result["errors"][side] = str(e).strip().splitlines()[-1]
            log(f"  {side}: {result['errors'][side]}")
    samples = {side: [] for side, _, _ in active}
    for _ in range(args.repeat):  # A B A B ...: every side sees the same drifts of the machine
        for side, w, calls in active:
            time.sleep(args.pause)  # let the previous side's spinning thread pool go idle
            samples[side].append(w.ask(op="time", calls=calls)["seconds"])
    for side, _, calls in active:
        med = statistics.median(samples[side])
        entry = {
            "median_ms": med * 1e3,
            "min_ms": min(samples[side]) * 1e3,
            "samples_ms": [s * 1e3 for s in samples[side]],
            "calls_per_sample": calls,
        }
        if workload.flop:
            entry["gflops"] = workload.flop / med / 1e9
        elif workload.bytes:
            entry["gbytes_per_s"] = workload.bytes / med / 1e9
        result["sides"][side] = entry
    mg = result["sides"].get("minigrad")
    result["ratios"] = {
        f"minigrad/{s}": mg["median_ms"] / e["median_ms"] for s, e in result["sides"].items() if mg and s != "minigrad"
    }
    return result


def sweep(args, selected, sides, log):
    """Every selected workload at every thread count of --threads, one run per count."""
    runs = []
    for threads in args.threads:
        # Fresh workers per count: OpenMP sizes its pool once per process, and the sides'
        # environment variables only take effect at start.
        with contextlib.ExitStack() as stack:
            workers = start_workers(sides, threads, stack, log)
            results = []
            for i, w in enumerate(selected, 1):
                log(f"[{i}/{len(selected)}] {w.name}, threads {threads}")
                r = measure(w, workers, args, log)
                log("  " + ", ".join(f"{s} {e['median_ms']:.4g} ms {rate(e)}".strip() for s, e in r["sides"].items()))
                results.append(r)
            runs.append({"threads": threads, "sides": {s: w.facts for s, w in workers.items()}, "results": results})
    return runs


def rate(entry):
    if "gflops" in entry:
        return f"{entry['gflops']:.1f} GF/s"
    if "gbytes_per_s" in entry:
        return f"{entry['gbytes_per_s']:.1f} GB/s"
    return ""


def header(report, title, settings):
    """The lines above a report's tables: machine, `settings` (one line), each side's library."""
    facts, runs = report["machine"], report["runs"]
    lines = [
        f"# {title}, {facts['date']}",
        "",
        f"- CPU: {facts['cpu']} ({facts['cpus']} CPUs), threads: {threads_label(facts['threads'])}, "
        f"load average at start {tuple(round(x, 2) for x in facts['load_average_start'])}, "
        f"at end {tuple(round(x, 2) for x in facts['load_average_end'])}",
        settings,
    ]
    for side, f in runs[0]["sides"].items():
        detail = {k: v for k, v in f.items() if k not in ("side", "python", "threads_used")}
        if "backend_info" in detail:
            info = detail.pop("backend_info")
            detail["isa"], detail["implementations"] = info.get("isa"), info.get("implementations")
        if "blas" in detail:
            detail["blas"] = [{k: v for k, v in b.items() if k != "filepath"} for b in detail["blas"]]
        lines.append(f"- {side}: {json.dumps(detail)}")
    used = [
        f"{run['threads']}: "
        + ", ".join(f"{s} {f['threads_used']}" for s, f in run["sides"].items() if "threads_used" in f)
        for run in runs
    ]
    lines.append("- threads the libraries used, per --threads setting: " + "; ".join(used))
    return lines


def errors_of(runs):
    errors = [(run["threads"], r["name"], s, e) for run in runs for r in run["results"] for s, e in r["errors"].items()]
    return ["", "Errors:"] + [f"- threads {t}, {n} / {s}: {e}" for t, n, s, e in errors] if errors else []


def markdown(report):
    settings, runs = report["settings"], report["runs"]
    lines = header(
        report,
        "minigrad benchmark",
        f"- settings: repeat {settings['repeat']}, warmup {settings['warmup']}, min time per sample "
        f"{settings['min_time']} s; times are medians per call; ratio = minigrad / reference (below 1: "
        "minigrad faster)" + ("; speed-up @N = minigrad's 1-thread time / its N-thread time" if len(runs) > 1 else ""),
    )
    lines += table_one_count(runs[0]["results"]) if len(runs) == 1 else table_sweep(runs)
    return "\n".join(lines + errors_of(runs)) + "\n"


def table_one_count(results):
    sides = [s for s in SIDES if any(s in r["sides"] for r in results)]
    refs = [s for s in sides if s != "minigrad"]
    head = ["workload", "minigrad ms"] + [c for s in refs for c in (f"{s} ms", f"mg/{s}")]
    head += [f"{s} rate" for s in sides]
    lines = ["", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        row = [r["name"], median_cell(r, "minigrad")]
        for s in refs:
            row += [median_cell(r, s), ratio_cell(r, s)]
        row += [rate(r["sides"][s]) if s in r["sides"] else "-" for s in sides]
        lines.append("| " + " | ".join(row) + " |")
    return lines


def table_sweep(runs):
    """A row per workload; per thread count each side's median and the ratios; then minigrad's
    speed-up over its 1-thread time where 1 is among the counts."""
    sides = [s for s in SIDES if any(s in r["sides"] for run in runs for r in run["results"])]
    refs = [s for s in sides if s != "minigrad"]
    by_count = [(run["threads"], {r["name"]: r for r in run["results"]}) for run in runs]
    one = next((named for t, named in by_count if t == 1), None)
    head = ["workload"]
    for t, _ in by_count:
        head += [f"mg ms @{t}"] + [c for s in refs for c in (f"{s} ms @{t}", f"mg/{s} @{t}")]
    head += [f"mg speed-up @{t}" for t, _ in by_count if one and t != 1]
    lines = ["", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in [r["name"] for r in runs[0]["results"]]:
        row = [name]
        for _, named in by_count:
            row += [median_cell(named[name], "minigrad")]
            for s in refs:
                row += [median_cell(named[name], s), ratio_cell(named[name], s)]
        for t, named in by_count:
            if one and t != 1:
                row.append(f"{speed_up(one[name], named[name]):.2f}" if speed_up(one[name], named[name]) else "-")
        lines.append("| " + " | ".join(row) + " |")
    return lines


def speed_up(base, result):
    """minigrad's time in `base` over its time in `result` (above 1: `result` is faster); None if either failed."""
    a, b = base["sides"].get("minigrad"), result["sides"].get("minigrad")
    return a["median_ms"] / b["median_ms"] if a and b else None


def median_cell(result, side):
    return f"{result['sides'][side]['median_ms']:.4g}" if side in result["sides"] else "-"


def ratio_cell(result, side):
    ratio = result["ratios"].get(f"minigrad/{side}")
    return f"{ratio:.2f}" if ratio is not None else "-"


def write_atomic(path, text):
    """Temp file in the same folder, fsync, rename: readers never see half a file."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def parse_threads(text):
    """``--threads``: "4", "1,2,4" or with "default" among them; every count positive, none twice."""
    counts = []
    for item in (part.strip() for part in text.split(",")):
        if item == DEFAULT:
            count = DEFAULT
        elif re.fullmatch(r"-?[0-9]+", item):
            count = int(item)
            if count < 1:
                raise argparse.ArgumentTypeError(f"thread counts must be positive, got {count}")
        else:
            raise argparse.ArgumentTypeError(f"{item!r} is neither a thread count nor {DEFAULT!r}")
        if count in counts:
            raise argparse.ArgumentTypeError(f"{item} is listed twice")
        counts.append(count)
    return counts


def threads_label(threads):
    return ",".join(str(t) for t in threads)


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--filter", help="regular expression on workload name or group")
    p.add_argument(
        "--threads",
        type=parse_threads,
        help="threads for every side, or a comma-separated list to sweep (1,2,4); 'default' sets no count and "
        "lets each library choose (default: the CPUs this process may use; with --contention: default)",
    )
    p.add_argument("--repeat", type=int, default=7, help="timed rounds (samples per side)")
    p.add_argument("--warmup", type=int, default=2, help="untimed samples per side first (--contention: steps)")
    p.add_argument("--min-time", type=float, default=0.05, help="seconds per sample, at least")
    p.add_argument("--pause", type=float, default=0.005, help="seconds between samples")
    p.add_argument("--sides", default=",".join(SIDES), help="comma-separated subset of " + ",".join(SIDES))
    p.add_argument("--contention", action="store_true", help="per-step times quiet, beside hogs, beside a twin")
    p.add_argument("--window", type=float, default=5.0, help="--contention: seconds timed per situation")
    p.add_argument("--hogs", type=int, default=1, help="--contention: busy-looping processes in the hog situation")
    p.add_argument("--out", default=RESULTS, help="folder for the JSON and markdown files")
    p.add_argument("--list", action="store_true", help="list the selected workloads and exit")
    p.add_argument("--worker", choices=SIDES, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.repeat < 1 or args.warmup < 0 or args.min_time <= 0 or args.window <= 0 or args.hogs < 1:
        p.error("--repeat and --hogs must be positive, --warmup >= 0, --min-time and --window > 0")
    if args.threads is None:
        # A contention run asks how a step fares as a user runs it: with each library's own default.
        args.threads = [DEFAULT] if args.contention else [cpu_count()]
    if args.worker and len(args.threads) != 1:
        p.error("a worker takes one thread count")
    args.sides = [s.strip() for s in args.sides.split(",") if s.strip()]
    unknown = set(args.sides) - set(SIDES)
    if unknown:
        p.error(f"unknown side(s) {sorted(unknown)}; choose from {SIDES}")
    return args


def sides_for(selected, wanted):
    """The wanted sides that have something to run among the selected workloads."""
    if not any(w.setup_numpy for w in selected) or not any(os.environ.get(v) for v in OPENBLAS_TUNING):
        wanted = [s for s in wanted if s != "numpy-auto"]  # identical to "numpy" then
    if not any(w.setup_numpy for w in selected):
        wanted = [s for s in wanted if s != "numpy"]
    if not any(w.setup_torch for w in selected):
        wanted = [s for s in wanted if s != "torch"]
    return wanted


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        worker(args.worker, args.threads[0])
        return 0

    selected = discover(args.filter)
    if args.list or not selected:
        for w in selected:
            print(f"{w.group:24s} {w.name}")
        if not selected:
            print(f"no workload matches {args.filter!r}", file=sys.stderr)
        return 0 if selected else 1
    sides = sides_for(selected, args.sides)

    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    facts = machine_facts(args.threads)
    if args.contention:
        from bench import contention  # it imports this module, so it cannot be imported at the top

        runs = contention.run(args, selected, sides, log)
        keys, prefix, to_markdown = contention.SETTINGS, "bench-contention", contention.markdown
    else:
        runs = sweep(args, selected, sides, log)
        keys, prefix, to_markdown = SETTINGS, "bench", markdown
    facts["load_average_end"] = os.getloadavg()
    report = {"machine": facts, "settings": {k: getattr(args, k) for k in keys}, "runs": runs}
    os.makedirs(args.out, exist_ok=True)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = os.path.join(args.out, f"{prefix}-{stamp}-t{threads_label(args.threads)}")
    table = to_markdown(report)
    write_atomic(base + ".json", json.dumps(report, indent=1) + "\n")
    write_atomic(base + ".md", table)
    print(table)
    log(f"wrote {base}.json and {base}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
