"""Benchmark runner: minigrad against PyTorch (and numpy for GEMM), side by side.

    python -m bench [--filter REGEX] [--threads N] [--repeat R] [--warmup W] [--min-time S]

Workloads come from bench/workloads/*.py (each module's ``workloads()``; see bench/common.py).
Every side runs in its own worker process, started once: PyTorch bundles its own OpenMP
runtime, and two runtimes in one process spin against each other for the cores. For each
workload the workers build their inputs, calibrate how many calls make one sample last at
least --min-time, warm up, and then take turns (minigrad, torch, numpy, minigrad, torch, ...)
for --repeat rounds, so slow drifts of the machine hit every side alike. Reported: the median
time per call, the ratio minigrad / reference (below 1: minigrad is faster), and GFLOP/s or
GB/s. A JSON file and a markdown table with the machine's facts go to bench/results/.

Sides: ``minigrad``, ``torch``, ``numpy`` (under this machine's OpenBLAS settings) and
``numpy-auto`` (OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE removed from that worker's
environment, so OpenBLAS picks its kernel for the CPU itself; run only where either is set).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import gc
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
REPLY = "@@bench "  # worker replies start with this; anything else on stdout is ignored


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

        minigrad.set_num_threads(threads)
        facts["minigrad"] = minigrad.__version__
        facts["backend_info"] = minigrad.backend_info()
    elif side == "torch":
        import torch

        torch.set_num_threads(threads)
        facts["torch"] = torch.__version__
        facts["torch_threads"] = torch.get_num_threads()
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


def worker(side, threads):
    """Serves one side: reads JSON commands on stdin, answers on stdout."""
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
            elif cmd["op"] == "quit":
                return
        except Exception:
            step = None
            reply(error=traceback.format_exc(limit=8))


class Worker:
    def __init__(self, side, threads):
        self.side = side
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH")) if p)
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
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
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        answer = self._read()
        if "error" in answer:
            raise RuntimeError(answer["error"])
        return answer

    def close(self):
        try:
            self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
        except Exception:
            self.proc.kill()


# ----------------------------------------------------------------------------- orchestra
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
        "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
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


def rate(entry):
    if "gflops" in entry:
        return f"{entry['gflops']:.1f} GF/s"
    if "gbytes_per_s" in entry:
        return f"{entry['gbytes_per_s']:.1f} GB/s"
    return ""


def markdown(report):
    facts, results = report["machine"], report["results"]
    sides = [s for s in SIDES if any(s in r["sides"] for r in results)]
    refs = [s for s in sides if s != "minigrad"]
    lines = [
        f"# minigrad benchmark, {facts['date']}",
        "",
        f"- CPU: {facts['cpu']} ({facts['cpus']} CPUs), threads: {facts['threads']}, "
        f"load average at start {tuple(round(x, 2) for x in facts['load_average_start'])}, "
        f"at end {tuple(round(x, 2) for x in facts['load_average_end'])}",
        f"- settings: repeat {report['settings']['repeat']}, warmup "
        f"{report['settings']['warmup']}, min time per sample {report['settings']['min_time']} s; "
        "times are medians per call; ratio = minigrad / reference (below 1: minigrad faster)",
    ]
    for side, f in report["sides"].items():
        detail = {k: v for k, v in f.items() if k not in ("side", "python")}
        if "backend_info" in detail:
            info = detail.pop("backend_info")
            detail["isa"], detail["implementations"] = info.get("isa"), info.get("implementations")
        if "blas" in detail:
            detail["blas"] = [{k: v for k, v in b.items() if k != "filepath"} for b in detail["blas"]]
        lines.append(f"- {side}: {json.dumps(detail)}")
    head = ["workload", "minigrad ms"] + [c for s in refs for c in (f"{s} ms", f"mg/{s}")]
    head += [f"{s} rate" for s in sides]
    lines += ["", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        cell = lambda s: f"{r['sides'][s]['median_ms']:.4g}" if s in r["sides"] else "-"  # noqa: E731, B023 (used in this iteration only)
        row = [r["name"], cell("minigrad")]
        for s in refs:
            ratio = r["ratios"].get(f"minigrad/{s}")
            row += [cell(s), f"{ratio:.2f}" if ratio is not None else "-"]
        row += [rate(r["sides"][s]) if s in r["sides"] else "-" for s in sides]
        lines.append("| " + " | ".join(row) + " |")
    errors = [(r["name"], s, e) for r in results for s, e in r["errors"].items()]
    if errors:
        lines += ["", "Errors:"] + [f"- {n} / {s}: {e}" for n, s, e in errors]
    return "\n".join(lines) + "\n"


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


def main(argv=None):
    default_threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--filter", help="regular expression on workload name or group")
    p.add_argument("--threads", type=int, default=default_threads, help="threads for every side")
    p.add_argument("--repeat", type=int, default=7, help="timed rounds (samples per side)")
    p.add_argument("--warmup", type=int, default=2, help="untimed samples per side first")
    p.add_argument("--min-time", type=float, default=0.05, help="seconds per sample, at least")
    p.add_argument("--pause", type=float, default=0.005, help="seconds between samples")
    p.add_argument("--sides", default=",".join(SIDES), help="comma-separated subset of " + ",".join(SIDES))
    p.add_argument("--out", default=RESULTS, help="folder for the JSON and markdown files")
    p.add_argument("--list", action="store_true", help="list the selected workloads and exit")
    p.add_argument("--worker", choices=SIDES, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.threads < 1 or args.repeat < 1 or args.warmup < 0 or args.min_time <= 0:
        p.error("--threads and --repeat must be positive, --warmup >= 0, --min-time > 0")
    if args.worker:
        worker(args.worker, args.threads)
        return 0

    selected = discover(args.filter)
    if args.list or not selected:
        for w in selected:
            print(f"{w.group:24s} {w.name}")
        if not selected:
            print(f"no workload matches {args.filter!r}", file=sys.stderr)
        return 0 if selected else 1
    wanted = [s.strip() for s in args.sides.split(",") if s.strip()]
    unknown = set(wanted) - set(SIDES)
    if unknown:
        p.error(f"unknown side(s) {sorted(unknown)}; choose from {SIDES}")
    if not any(w.setup_numpy for w in selected) or not any(os.environ.get(v) for v in OPENBLAS_TUNING):
        wanted = [s for s in wanted if s != "numpy-auto"]  # identical to "numpy" then
    if not any(w.setup_numpy for w in selected):
        wanted = [s for s in wanted if s != "numpy"]
    if not any(w.setup_torch for w in selected):
        wanted = [s for s in wanted if s != "torch"]

    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    facts = machine_facts(args.threads)
    workers = {}
    try:
        for side in wanted:
            try:
                workers[side] = Worker(side, args.threads)
                if workers[side].facts is None:
                    raise RuntimeError("no facts")
            except Exception as e:
                log(f"{side}: worker failed to start ({e}); side skipped")
                workers.pop(side, None)
        results = []
        for i, w in enumerate(selected, 1):
            log(f"[{i}/{len(selected)}] {w.name}")
            r = measure(w, workers, args, log)
            summary = ", ".join(f"{s} {e['median_ms']:.4g} ms {rate(e)}" for s, e in r["sides"].items())
            log(f"  {summary}")
            results.append(r)
    finally:
        side_facts_ = {s: w.facts for s, w in workers.items()}
        for w in workers.values():
            w.close()
    facts["load_average_end"] = os.getloadavg()
    report = {
        "machine": facts,
        "sides": side_facts_,
        "results": results,
        "settings": {k: getattr(args, k) for k in ("filter", "threads", "repeat", "warmup", "min_time", "pause")},
    }
    os.makedirs(args.out, exist_ok=True)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = os.path.join(args.out, f"bench-{stamp}-t{args.threads}")
    table = markdown(report)
    write_atomic(base + ".json", json.dumps(report, indent=1) + "\n")
    write_atomic(base + ".md", table)
    print(table)
    log(f"wrote {base}.json and {base}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
