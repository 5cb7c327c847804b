"""How many threads the kernels use, and how idle ones wait.

Three rules, each with its reason in csrc/README.md ("Threads"):

- **The default count fits the process**: the CPUs its affinity mask allows (``taskset``,
  ``os.sched_getaffinity``), fewer under a cgroup CPU quota (``cpu.max``, or cgroup v1's
  ``cpu.cfs_quota_us``: a container started with ``--cpus 2``), rounded up; ``OMP_NUM_THREADS``
  or :func:`set_num_threads` override it. :func:`thread_info` says which rule gave the count.
- **Each call takes the threads its work pays for** (the cost model in csrc/parallel.cpp), and
  while other processes keep CPUs busy, at most the CPUs they leave free
  (``shrink_when_busy``). Results are bitwise the same at any team size, so neither changes a
  number, only the time.
- **Idle workers wait briefly, then sleep**: unless the user set ``OMP_WAIT_POLICY`` or
  ``GOMP_SPINCOUNT``, minigrad sets ``GOMP_SPINCOUNT`` to :data:`SPIN_COUNT` just before its
  kernels load the OpenMP runtime, which reads it once (and removes it again, so child processes
  see the user's environment).
"""

from __future__ import annotations

import math
import os

# libgomp's workers spin this many times (about 5-20 microseconds; measured in csrc/README.md)
# before sleeping: long enough to bridge the Python between two kernels of one step, short
# enough that a worker idle for longer gives its core back to whatever else runs.
SPIN_COUNT = 10000
WAIT_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


def _openmp_runtime_loaded() -> bool:
    """Whether this process already mapped libgomp (it then keeps the settings it read)."""
    try:
        with open("/proc/self/maps") as maps:
            return any("libgomp" in line for line in maps)
    except OSError:
        return False


def _choose_wait_policy() -> tuple[str, bool]:
    """Describes the wait policy and sets GOMP_SPINCOUNT if minigrad chooses it (returns True then)."""
    given = {name: os.environ[name] for name in WAIT_VARIABLES if name in os.environ}
    if given:
        return "from the environment: " + ", ".join(f"{k}={v}" for k, v in given.items()), False
    if _openmp_runtime_loaded():
        return "the OpenMP runtime's own (it was loaded before minigrad)", False
    os.environ["GOMP_SPINCOUNT"] = str(SPIN_COUNT)
    return f"GOMP_SPINCOUNT={SPIN_COUNT} (minigrad's default: spin briefly, then sleep)", True


_WAIT_POLICY, _set_spincount = _choose_wait_policy()
try:
    from . import _C  # loads libgomp, which reads GOMP_SPINCOUNT now
finally:
    if _set_spincount:
        os.environ.pop("GOMP_SPINCOUNT", None)


# ------------------------------------------------------------------------ the default count
def cgroup_cpu_limit(proc_cgroup: str = "/proc/self/cgroup", root: str = "/sys/fs/cgroup") -> float | None:
    """The CPU quota of this process's cgroup and its ancestors, in CPUs (None: no quota).

    cgroup v2: ``cpu.max`` holds "QUOTA PERIOD" or "max PERIOD"; v1: ``cpu.cfs_quota_us`` (-1: none)
    and ``cpu.cfs_period_us`` under the ``cpu`` controller's hierarchy. The tightest level wins."""
    try:
        with open(proc_cgroup) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    limits = []
    for line in lines:
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and controllers == "":  # v2: one unified tree
            for folder in _self_and_parents(root, path):
                limits.append(_read_v2_limit(os.path.join(folder, "cpu.max")))
        elif "cpu" in controllers.split(","):  # v1: the cpu controller's own tree
            base = os.path.join(root, controllers)
            if not os.path.isdir(base):
                base = os.path.join(root, "cpu")
            for folder in _self_and_parents(base, path):
                limits.append(_read_v1_limit(folder))
    limits = [q for q in limits if q is not None]
    return min(limits) if limits else None


def _self_and_parents(base: str, path: str) -> list[str]:
    parts = [p for p in path.strip("/").split("/") if p]
    return [os.path.join(base, *parts[:depth]) for depth in range(len(parts), -1, -1)]


def _read_number_file(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def _read_v2_limit(path: str) -> float | None:
    text = _read_number_file(path)
    if not text:
        return None
    quota, _, period = text.partition(" ")
    if quota == "max":
        return None
    try:
        q, p = float(quota), float(period or 100000)
    except ValueError:
        return None
    return _cpus(q, p)


def _cpus(quota: float, period: float) -> float | None:
    """quota / period in CPUs, or None unless both are positive and finite (no limit)."""
    if not (0 < quota < math.inf and 0 < period < math.inf):
        return None
    return quota / period


def _read_v1_limit(folder: str) -> float | None:
    quota = _read_number_file(os.path.join(folder, "cpu.cfs_quota_us"))
    period = _read_number_file(os.path.join(folder, "cpu.cfs_period_us"))
    try:
        q, p = float(quota or -1), float(period or 100000)
    except ValueError:
        return None
    return _cpus(q, p)


def default_thread_count(affinity: set[int] | None = None, cpu_limit: float | None = None) -> tuple[int, str]:
    """(threads, why): the CPUs in the affinity mask, capped by the cgroup quota rounded up.

    With no arguments both are read from this process."""
    if affinity is None:
        affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set(range(os.cpu_count() or 1))
    if cpu_limit is None:
        cpu_limit = cgroup_cpu_limit()
    cpus = max(1, len(affinity))
    why = f"CPU affinity mask ({cpus} of {os.cpu_count()} CPUs)"
    if cpu_limit is not None and math.ceil(cpu_limit) < cpus:
        return max(1, math.ceil(cpu_limit)), f"cgroup CPU quota ({cpu_limit:g} CPUs; affinity allows {cpus})"
    return cpus, why


def _initial_count() -> str:
    given = os.environ.get("OMP_NUM_THREADS", "")
    first = given.split(",")[0].strip()  # "4,2" is a count per nesting level: the first is ours
    if first.isdigit() and int(first) > 0:  # libgomp has read it: its count stands
        return f"OMP_NUM_THREADS={given.strip()}"
    count, why = default_thread_count()
    if given:  # libgomp ignores a value it cannot read; say why it did not count
        why += f"; OMP_NUM_THREADS={given!r} is not a positive count and was ignored"
    _C.set_num_threads(count)
    return why


_source = _initial_count()
if os.environ.get("MINIGRAD_SHRINK_WHEN_BUSY", "1") == "0":
    _C.set_thread_policy(size_by_work=True, shrink_when_busy=False)


# ----------------------------------------------------------------------------- the controls
def set_num_threads(n: int) -> None:
    """Threads every kernel may use at most (default: see the module docstring)."""
    global _source
    if isinstance(n, bool) or int(n) != n or int(n) < 1:
        raise ValueError(f"set_num_threads expects a positive whole count, got {n!r}")
    _C.set_num_threads(int(n))
    _source = "set_num_threads"


def get_num_threads() -> int:
    """The most threads one kernel call may use."""
    return _C.get_num_threads()


def set_thread_policy(size_by_work: bool | None = None, shrink_when_busy: bool | None = None) -> None:
    """Switches the team-size rules (None keeps one as it is).

    ``size_by_work=False`` gives every parallel call all :func:`get_num_threads` threads, however
    small its work; ``shrink_when_busy=False`` ignores other processes' load (also:
    ``MINIGRAD_SHRINK_WHEN_BUSY=0`` in the environment)."""
    for name, value in (("size_by_work", size_by_work), ("shrink_when_busy", shrink_when_busy)):
        if value is not None and not isinstance(value, bool):
            raise TypeError(f"set_thread_policy: {name} must be True, False or None, got {value!r}")
    now = _C.thread_policy()
    _C.set_thread_policy(
        size_by_work=now["size_by_work"] if size_by_work is None else size_by_work,
        shrink_when_busy=now["shrink_when_busy"] if shrink_when_busy is None else shrink_when_busy,
    )


def thread_info() -> dict:
    """The thread count and where it came from, the wait policy, the team-size rules, the load the
    shrinking sees (``others_busy``: CPUs other processes kept busy; ``busy_cap``: the team cap it
    set, 0 for none) and each kernel family's two-thread crossover in its own work units."""
    policy = _C.thread_policy()
    return {"threads": get_num_threads(), "source": _source, "wait_policy": _WAIT_POLICY, **policy}
