"""Several processes, one model: collective communication over MPI (through mpi4py), with
PyTorch's names.

Launch the same script on N processes with the MPI that the machine or cluster has::

    mpirun -n 4 python train.py          # a laptop or one node (pip install "minigrad[distributed]")
    srun python train.py                 # inside a Slurm allocation

and call :func:`init_process_group` first. Every process (a *rank*, 0 .. world size - 1) runs
the same program on its own share of the data; :class:`minigrad.nn.parallel.DistributedDataParallel`
averages the gradients so every rank takes the same optimiser step. Without a launcher (or
without mpi4py) a script runs as a group of one: rank 0 of 1, every collective a no-op.

If any rank raises, it prints ``rank R of N failed: ...`` and aborts the whole job (MPI_Abort),
so the others never wait forever in a collective; a rank killed outright is noticed by the
launcher, which ends the job and names it.
"""

from __future__ import annotations

import enum
import os
import sys
import traceback
from typing import Any

import numpy as np

from .tensor import Tensor

# what each launcher puts in the environment of the processes it starts: (size, rank)
_LAUNCHERS = (
    ("OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK"),  # Open MPI's mpirun
    ("PMI_SIZE", "PMI_RANK"),  # MPICH, Intel MPI (Hydra)
    ("PMIX_SIZE", "PMIX_RANK"),
    ("SLURM_NTASKS", "SLURM_PROCID"),  # srun
)


class ReduceOp(enum.Enum):
    SUM = "sum"
    AVG = "avg"  # a sum divided by the world size
    MAX = "max"
    MIN = "min"
    PRODUCT = "product"


class _Group:
    """The process group: MPI's world communicator, or nothing for a group of one."""

    def __init__(self, comm, mpi):
        self.comm, self.mpi = comm, mpi
        self.rank = comm.Get_rank() if comm is not None else 0
        self.size = comm.Get_size() if comm is not None else 1


_group: _Group | None = None


def launched_size() -> int:
    """The number of processes a launcher started this one among (1 without a launcher)."""
    for size, _ in _LAUNCHERS:
        if os.environ.get(size, "").isdigit():
            return int(os.environ[size])
    return 1


def init_process_group(backend: str = "mpi", **_ignored) -> None:
    """Joins the processes the launcher started (mpirun, mpiexec, srun). Without a launcher,
    a group of one: rank 0, world size 1, no MPI needed. ``backend``: "mpi" (PyTorch's
    "gloo" is accepted as a synonym so ported scripts run); other keyword arguments of
    PyTorch's (init_method, world_size, rank) are taken from the launcher instead."""
    global _group
    if backend not in ("mpi", "gloo"):
        raise ValueError(f"init_process_group: minigrad communicates over MPI; backend {backend!r} is not available")
    if _group is not None:
        return
    expected = launched_size()
    try:
        from mpi4py import MPI
    except ImportError:
        if expected > 1:
            raise ImportError(
                f"init_process_group: this process is one of {expected} started by an MPI launcher, but mpi4py is "
                "not installed: pip install 'minigrad[distributed]'"
            ) from None
        _group = _Group(None, None)
        return
    _group = _Group(MPI.COMM_WORLD, MPI)
    if _group.size > 1:
        _abort_on_exception()


def _abort_on_exception() -> None:
    """An uncaught exception on one rank ends every rank (MPI_Abort), naming the rank: the
    others would otherwise wait in their next collective forever."""
    previous = sys.excepthook

    def hook(kind, value, tb):
        group = _group
        if group is None or group.size == 1:
            previous(kind, value, tb)
            return
        print(f"minigrad.distributed: rank {group.rank} of {group.size} failed:", file=sys.stderr)
        traceback.print_exception(kind, value, tb, file=sys.stderr)
        sys.stderr.flush()
        group.comm.Abort(1)

    sys.excepthook = hook


def destroy_process_group() -> None:
    """Leaves the group (MPI itself is finalised when the process exits)."""
    global _group
    _group = None


def is_available() -> bool:
    """Whether mpi4py can be imported (a group of one needs nothing)."""
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return True


def is_initialized() -> bool:
    return _group is not None


def _require() -> _Group:
    if _group is None:
        raise RuntimeError("the process group is not initialised: call minigrad.distributed.init_process_group() first")
    return _group


def get_rank() -> int:
    return _group.rank if _group is not None else 0


def get_world_size() -> int:
    return _group.size if _group is not None else 1


def mpi_library() -> str | None:
    """The MPI library's own version line, or None without MPI."""
    group = _group
    if group is None or group.mpi is None:
        return None
    return group.mpi.Get_library_version().replace("\x00", "").splitlines()[0].strip()


def barrier() -> None:
    group = _require()
    if group.size > 1:
        group.comm.Barrier()


def _array(tensor) -> np.ndarray:
    array = tensor.data if isinstance(tensor, Tensor) else tensor
    if not isinstance(array, np.ndarray) or not array.flags.c_contiguous:
        raise TypeError(f"expected a Tensor or a C-contiguous numpy array, got {type(tensor).__name__}")
    return array


def _mpi_op(group: _Group, op: ReduceOp):
    mpi = group.mpi
    return {ReduceOp.SUM: mpi.SUM, ReduceOp.AVG: mpi.SUM, ReduceOp.MAX: mpi.MAX, ReduceOp.MIN: mpi.MIN,
            ReduceOp.PRODUCT: mpi.PROD}[op]  # fmt: skip


def _check_same_shape(group: _Group, array: np.ndarray, who: str) -> None:
    """Every rank must pass the same shape and dtype: MPI would silently read or write past a
    shorter buffer. One small collective compares them first."""
    mine = (array.shape, array.dtype.str)
    everyone = group.comm.allgather(mine)
    if any(other != mine for other in everyone):
        listed = ", ".join(f"rank {r}: {shape} {np.dtype(dtype)}" for r, (shape, dtype) in enumerate(everyone))
        raise ValueError(f"{who}: the ranks passed different tensors ({listed})")


def all_reduce(tensor, op: ReduceOp = ReduceOp.SUM, async_op: bool = False) -> Work | None:
    """Replaces ``tensor`` (in place) by the element-wise ``op`` of every rank's ``tensor``.
    ``async_op=True`` returns a :class:`Work` to ``wait()`` on; the tensor holds the result
    only after that."""
    group, array = _require(), _array(tensor)
    op = ReduceOp(op)
    if group.size == 1:
        return Work(None, None) if async_op else None
    _check_same_shape(group, array, "all_reduce")
    work = start_all_reduce(array, op)
    if async_op:
        return work
    work.wait()
    return None


def start_all_reduce(array: np.ndarray, op: ReduceOp = ReduceOp.SUM) -> Work:
    """The non-blocking all-reduce itself, in place, without comparing shapes across ranks:
    for callers that know every rank passes the same buffer (DistributedDataParallel's
    buckets, checked once when it wraps the model)."""
    group = _require()
    if group.size == 1:
        return Work(None, None)
    scale = 1.0 / group.size if op is ReduceOp.AVG else None
    request = group.comm.Iallreduce(group.mpi.IN_PLACE, array, op=_mpi_op(group, op))
    return Work(request, (lambda: array.__imul__(scale)) if scale is not None else None)


class Work:
    """An all-reduce in flight: ``wait()`` blocks until it is done; ``is_completed()``
    checks (and lets MPI make progress)."""

    def __init__(self, request, then):
        self._request, self._then, self._done = request, then, request is None

    def is_completed(self) -> bool:
        if not self._done and self._request.Test():
            self._finish()
        return self._done

    def wait(self) -> bool:
        if not self._done:
            self._request.Wait()
            self._finish()
        return True

    def _finish(self) -> None:
        self._done = True
        if self._then is not None:
            self._then()


def broadcast(tensor, src: int = 0) -> None:
    """Copies rank ``src``'s ``tensor`` into every rank's (in place)."""
    group, array = _require(), _array(tensor)
    if not 0 <= src < group.size:
        raise ValueError(f"broadcast: src must be a rank in 0..{group.size - 1}, got {src}")
    if group.size > 1:
        _check_same_shape(group, array, "broadcast")
        group.comm.Bcast(array, root=src)


def start_broadcast(array: np.ndarray, src: int = 0) -> None:
    """Rank ``src``'s ``array`` into every rank's, without comparing shapes first (for callers
    that know they match)."""
    group = _require()
    if group.size > 1:
        group.comm.Bcast(array, root=src)


def all_gather(tensor_list: list, tensor) -> None:
    """Fills ``tensor_list[r]`` with rank r's ``tensor``, on every rank."""
    group, array = _require(), _array(tensor)
    if len(tensor_list) != group.size:
        raise ValueError(f"all_gather: tensor_list needs {group.size} entries (one per rank), got {len(tensor_list)}")
    targets = [_array(t) for t in tensor_list]
    if any(t.shape != array.shape or t.dtype != array.dtype for t in targets):
        raise ValueError(f"all_gather: every entry of tensor_list must be {array.shape} {array.dtype} like the tensor")
    if group.size == 1:
        targets[0][...] = array
        return
    _check_same_shape(group, array, "all_gather")
    gathered = np.empty((group.size, *array.shape), dtype=array.dtype)
    group.comm.Allgather(array, gathered)
    for target, part in zip(targets, gathered):
        target[...] = part


def all_gather_object(object_list: list, obj) -> None:
    """Fills ``object_list`` (one entry per rank) with every rank's picklable ``obj``."""
    group = _require()
    if len(object_list) != group.size:
        raise ValueError(f"all_gather_object: object_list needs {group.size} entries, got {len(object_list)}")
    object_list[:] = group.comm.allgather(obj) if group.size > 1 else [obj]


def all_reduce_object(value, op: ReduceOp = ReduceOp.SUM) -> Any:
    """A Python number (or anything MPI can pickle and reduce) combined across ranks; the
    training loop averages its metrics with it."""
    group = _require()
    if group.size == 1:
        return value
    total = group.comm.allreduce(value, op=_mpi_op(group, ReduceOp(op)))
    return total / group.size if ReduceOp(op) is ReduceOp.AVG else total


__all__ = [
    "ReduceOp",
    "Work",
    "all_gather",
    "all_gather_object",
    "all_reduce",
    "all_reduce_object",
    "barrier",
    "broadcast",
    "destroy_process_group",
    "get_rank",
    "get_world_size",
    "init_process_group",
    "is_available",
    "is_initialized",
    "launched_size",
    "mpi_library",
    "start_all_reduce",
    "start_broadcast",
]
