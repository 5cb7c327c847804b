"""Model files: ``save(state_dict, path)`` and ``load(path)`` in the safetensors format.

Layout of a file (all integers little-endian):

    8 bytes   N, the header length (unsigned 64-bit)
    N bytes   a JSON object, padded with spaces:  {"name": {"dtype": "F32", "shape": [6, 1, 5, 5],
              "data_offsets": [begin, end]}, ..., "__metadata__": {"key": "text"}}
    the rest  the raw little-endian tensor bytes; each tensor's [begin, end) is relative to
              the start of this region, and together they cover it exactly, without overlap.

Why this format: loading it executes nothing (unlike pickle, which can run arbitrary code
from a downloaded checkpoint), it is what PyTorch and other frameworks export pretrained
weights in, and it is simple enough to read and write with numpy in a page of code. So
minigrad carries its own reader/writer instead of a dependency, and checks every header
field, offset and size on load: a truncated, corrupted or mislabelled file raises
:class:`CorruptFileError` (a ``ValueError``) naming the file and saying what is wrong rather
than yielding garbage weights.

Writes are atomic (see :func:`write_atomically`): a crash mid-save leaves the previous file intact.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
import struct
import tempfile
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from .dtypes import bfloat16_type, is_bfloat16
from .tensor import Tensor

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

# safetensors dtype code -> little-endian numpy dtype
_DTYPES = {
    "F64": "<f8",
    "F32": "<f4",
    "F16": "<f2",
    "BF16": "<u2",  # the top 16 bits of a float32: read as raw bits, then made bfloat16 (see _decoded)
    "I64": "<i8",
    "I32": "<i4",
    "I16": "<i2",
    "I8": "i1",
    "U8": "u1",
    "BOOL": "?",
}
# native numpy dtype -> code (bfloat16 -> "BF16": _code_of)
_CODES = {np.dtype(v).newbyteorder("="): k for k, v in _DTYPES.items() if k != "BF16"}
_WIDENED = {"F16": np.float32, "I16": np.int32, "I8": np.int32}  # dtypes minigrad has no Tensor for


def _code_of(dtype: np.dtype) -> str | None:
    """The file's code for ``dtype``, or None where the format cannot store it."""
    return "BF16" if is_bfloat16(dtype) else _CODES.get(dtype.newbyteorder("="))


def _decoded(array: np.ndarray, code: str) -> np.ndarray:
    """A native-order copy of a stored array in the dtype minigrad keeps it in."""
    if code != "BF16":
        # np.dtype(scalar type): numpy's own native descriptor, the object the kernels' dtype
        # checks compare against (a byte-order-swapped copy is equal but not identical)
        return array.astype(_WIDENED.get(code, np.dtype(np.dtype(_DTYPES[code]).type)))
    bits = array.astype(np.uint16)
    bfloat16 = bfloat16_type()
    if bfloat16 is not None:
        return bits.view(bfloat16)
    return (bits.astype(np.uint32) << 16).view(np.float32)  # without ml_dtypes: exact float32 values


_MAX_HEADER = 100 * 1024 * 1024
MAX_DIMENSIONS = 32  # numpy 1's limit on array dimensions (numpy 2's is 64): the most any reader accepts


def shape_problem(shape: Sequence[int], itemsize: int) -> str | None:
    """Why numpy cannot make an array of ``shape`` (non-negative ints) with items of
    ``itemsize`` bytes, or None. Every reader asks this before reshaping what a file declares:
    numpy refuses more than :data:`MAX_DIMENSIONS` dimensions, and any shape whose non-zero
    sizes multiply to more bytes than it can address, even one a zero size makes empty."""
    if len(shape) > MAX_DIMENSIONS:
        return f"{len(shape)} dimensions (at most {MAX_DIMENSIONS})"
    if math.prod(n for n in shape if n) * itemsize > np.iinfo(np.intp).max:  # Python ints: exact
        # (no sizes in the message: a pickled int can have more digits than str() will print)
        return f"a shape too large for any array (its {len(shape)} sizes other than 0 multiply to over 2**63 bytes)"
    return None


class CorruptFileError(ValueError):
    """A file that is truncated, corrupted, or not what it claims to be: every reader in
    minigrad (safetensors models, checkpoints, IDX/gzip and CIFAR dataset files) raises this,
    with the file's path and what is wrong with it, for whatever the file's bytes hold.

    A ``ValueError``, so ``except ValueError`` keeps working; ``path`` and ``problem`` are
    the two parts of the message."""

    def __init__(self, path: str | os.PathLike, problem: str):
        super().__init__(os.fspath(path), problem)  # both in args, so the error pickles (worker processes)
        self.path, self.problem = os.fspath(path), problem

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


# What PyTorch scripts pass to torch.save besides a flat state_dict: an optimiser's state_dict,
# or {"model": ..., "optimizer": ..., "epoch": 3, "loss": 0.25}. Such an object is stored as
# its tensors, under the paths that lead to them ("model/fc.weight", "optimizer/state/0/
# momentum_buffer"), plus its shape as JSON in the metadata (numbers, strings, booleans and
# None in place; dicts with non-string keys and tuples marked), never pickle. A flat dict of
# tensors stays a plain safetensors file that PyTorch reads.
_STRUCTURE_KEY = "minigrad.structure"


def _is_array(value) -> bool:
    return isinstance(value, (Tensor, np.ndarray, np.generic)) and not isinstance(value, (np.str_, np.bool_))


def _flatten(value, path: str, arrays: dict):
    """value's JSON shape, its arrays moved into ``arrays`` under their paths."""
    if _is_array(value):
        arrays[path] = value
        return {"tensor": path}
    if isinstance(value, (bool, np.bool_)) or value is None or isinstance(value, str):
        return value if not isinstance(value, np.bool_) else bool(value)
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            return {"float": repr(value)}
        return value
    if isinstance(value, Mapping):
        items = [[k, _flatten(v, f"{path}/{k}" if path else str(k), arrays)] for k, v in value.items()]
        if all(isinstance(k, str) for k in value):
            return {"dict": items}
        if not all(isinstance(k, (str, int)) and not isinstance(k, bool) for k in value):
            raise TypeError(
                f"save: dict keys must be strings or integers, got {sorted(map(repr, value))[:3]} at {path!r}"
            )
        return {"dict": items}
    if isinstance(value, (list, tuple)):
        items = [_flatten(v, f"{path}/{i}" if path else str(i), arrays) for i, v in enumerate(value)]
        return {"tuple" if isinstance(value, tuple) else "list": items}
    raise TypeError(
        f"save: cannot store {type(value).__name__} at {path or 'the top level'!r} (tensors, arrays, numbers, strings, None, and dicts/lists/tuples of them)"
    )


def _rebuild(shape, state: dict):
    if not isinstance(shape, dict):
        return shape
    if "tensor" in shape:
        return state[shape["tensor"]]
    if "float" in shape:
        return float(shape["float"])
    if "dict" in shape:
        return {k: _rebuild(v, state) for k, v in shape["dict"]}
    items = [_rebuild(v, state) for v in shape.get("list", shape.get("tuple", []))]
    return tuple(items) if "tuple" in shape else items


def _is_flat(obj) -> bool:
    return isinstance(obj, Mapping) and all(isinstance(k, str) and _is_array(v) for k, v in obj.items())


def save(obj: object, path: str | os.PathLike, metadata: Mapping[str, str] | None = None) -> None:
    """Writes ``obj`` to ``path`` atomically: a ``state_dict`` (names -> Tensors or numpy
    arrays) as a plain safetensors file, or, as ``torch.save`` takes them, an optimiser's
    ``state_dict`` or a dict/list of state_dicts, tensors, numbers, strings and None
    (its shape kept in the metadata; :func:`load` gives the same object back).
    ``metadata``: optional text key/value pairs stored in the header."""
    if not _is_flat(obj):
        arrays: dict = {}
        shape = _flatten(obj, "", arrays)
        metadata = {**(metadata or {}), _STRUCTURE_KEY: json.dumps(shape, separators=(",", ":"))}
        obj = arrays
    _save_flat(obj, path, metadata)


def _save_flat(state_dict: Mapping[str, object], path: str | os.PathLike, metadata: Mapping[str, str] | None) -> None:
    arrays = {}
    for name, value in state_dict.items():
        if not isinstance(name, str) or not name or name == "__metadata__":
            raise ValueError(f"save: tensor names must be non-empty strings other than '__metadata__', got {name!r}")
        array = np.asarray(value.data if isinstance(value, Tensor) else value)
        if _code_of(array.dtype) is None:
            raise TypeError(f"save: {name!r} has dtype {array.dtype}, which the file format cannot store")
        arrays[name] = np.asarray(array, dtype=array.dtype.newbyteorder("<"), order="C")
    # Widest dtypes first, so every tensor starts at a multiple of its item size.
    names = sorted(arrays, key=lambda n: (-arrays[n].dtype.itemsize, n))
    header, offset = {}, 0
    for name in names:
        array = arrays[name]
        header[name] = {
            "dtype": _code_of(array.dtype),
            "shape": list(array.shape),
            "data_offsets": [offset, offset + array.nbytes],
        }
        offset += array.nbytes
    if metadata:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise TypeError("save: metadata must map strings to strings")
        header["__metadata__"] = dict(metadata)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # the data region starts 8-byte aligned
    chunks = [struct.pack("<Q", len(text)), text] + [_tensor_bytes(arrays[n]) for n in names]
    write_atomically(path, chunks)


def _tensor_bytes(array: np.ndarray) -> memoryview:
    return memoryview(array.reshape(-1).view(np.uint8))


def write_atomically(path: str | os.PathLike, chunks: Iterable[bytes]) -> None:
    """Writes ``chunks`` to a temporary file in the target's directory, fsyncs it, renames it
    over ``path`` (atomic on POSIX and Windows) and fsyncs the directory so the rename itself
    survives a power cut. Until the rename, ``path`` keeps its old content; on any error the
    temporary file is removed.

    A process killed mid-save cannot remove its temporary (``.{name}.{pid}.{random}.tmp``,
    hidden, next to the target), so each save first removes those of earlier saves of the same
    target whose writer is gone: the pid in the name is no running process and no one holds the
    file's lock (a writer holds an exclusive ``flock`` on its temporary until the rename, which
    also covers a writer in another pid namespace sharing the directory)."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    name = os.path.basename(path)
    _remove_stale_temporaries(directory, name)
    fd, temporary = tempfile.mkstemp(prefix=f".{name}.{os.getpid()}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            _try_lock(f.fileno())
            os.fchmod(f.fileno(), _mode_for(path))  # mkstemp makes 0600; the file should read like any other
            for chunk in chunks:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
            os.replace(temporary, path)  # still open, so never unlocked under its temporary name
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise
    _fsync_directory(directory)


def _try_lock(fd: int) -> None:
    if fcntl is None:  # Windows: an open file cannot be removed there anyway
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # a file system without locks: the pid in the name still protects this writer
        pass


def _remove_stale_temporaries(directory: str, name: str) -> None:
    """Removes ``directory``'s temporaries of target ``name`` left by writers that are gone;
    never raises (a leftover is better than a failed save)."""
    if fcntl is None:  # Windows: no flock, and os.kill(pid, 0) would terminate the process
        return
    ours = re.compile(re.escape(f".{name}.") + r"(\d+)\.[A-Za-z0-9_]+\.tmp")  # (mkstemp's random part has no dot)
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    for entry in entries:
        match = ours.fullmatch(entry.name)
        if match and not _process_exists(int(match[1])):
            _remove_if_unlocked(entry.path)


def _process_exists(pid: int) -> bool:
    if pid <= 0:  # os.kill(0, ...) means "my process group": not a writer's pid
        return True
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # another user's process (or no valid pid): keep its file
        return True
    return True


def _remove_if_unlocked(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)  # never through a symlink
    except OSError:
        return
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # fails while a live writer holds it
        if os.stat(path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino:  # still the file we locked
            os.unlink(path)
    except OSError:
        pass
    finally:
        os.close(fd)


def _process_umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it; put it straight back
    os.umask(mask)
    return mask


_UMASK = _process_umask()


def _mode_for(path: str) -> int:
    """The replaced file's permissions, or what a plain ``open(path, "w")`` would give."""
    try:
        return os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        return 0o666 & ~_UMASK


def _fsync_directory(directory: str) -> None:
    if os.name != "posix":  # Windows cannot open a directory; its rename is already durable
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load(path: str | os.PathLike) -> dict:
    """Reads a safetensors file into a dict of Tensors (in file order), or, for a file
    :func:`save` wrote from a nested object, that object (optimiser states, checkpoints). float16 and 8/16-bit
    integers, which minigrad has no Tensors for, are widened losslessly to float32/int32;
    bfloat16 (PyTorch's bf16 checkpoints) stays bfloat16, or becomes float32 without ml_dtypes.
    Raises :class:`CorruptFileError` naming the file and the problem for truncated, corrupted
    or inconsistent files (header over 100 MiB, bad JSON, unknown dtypes, shapes whose size
    does not match their offsets, gaps, overlaps, trailing bytes)."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        blob = f.read()
    entries, metadata, start = _parse_header(blob, path)
    state = {}
    for name, code, shape, begin, end in entries:
        array = np.frombuffer(
            blob, dtype=_DTYPES[code], count=(end - begin) // np.dtype(_DTYPES[code]).itemsize, offset=start + begin
        ).reshape(shape)
        state[name] = Tensor(_decoded(array, code))
    if _STRUCTURE_KEY in metadata:  # saved from a nested object: give that object back
        try:
            return _rebuild(json.loads(metadata[_STRUCTURE_KEY]), state)
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as error:
            raise CorruptFileError(path, f"its object structure does not match its tensors ({error!r:.200})") from None
    return state


def load_metadata(path: str | os.PathLike) -> dict:
    """The ``__metadata__`` text pairs of a safetensors file (empty if none); reads only the
    header, and raises :class:`CorruptFileError` for a malformed one, as :func:`load` does."""
    with open(os.fspath(path), "rb") as f:
        head = f.read(8)
        size = struct.unpack("<Q", head)[0] if len(head) == 8 else 0
        blob = head + f.read(min(size, _MAX_HEADER))
    return _parse_header(blob, os.fspath(path), check_data=False)[1]


def _parse_header(blob: bytes, path: str, check_data: bool = True):
    def bad(reason):
        return CorruptFileError(path, f"not a valid safetensors file: {reason}")

    if len(blob) < 8:
        raise bad(f"truncated: {len(blob)} bytes, shorter than the 8-byte header length")
    size = struct.unpack("<Q", blob[:8])[0]
    if size > _MAX_HEADER:
        raise bad(f"header length {size} exceeds the 100 MiB limit (corrupted or not safetensors)")
    if 8 + size > len(blob):
        raise bad(f"truncated: header says {size} bytes but only {len(blob) - 8} follow")
    try:
        header = json.loads(blob[8 : 8 + size].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise bad(f"corrupted JSON header ({error})") from None
    except RecursionError:
        raise bad("corrupted JSON header (nested too deeply)") from None
    if not isinstance(header, dict):
        raise bad("the header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise bad("__metadata__ must map strings to strings")
    entries = []
    for name, entry in header.items():
        entries.append((name, *_check_entry(name, entry, bad)))
    if check_data:
        data_size = len(blob) - 8 - size
        position = 0
        for name, _, _, begin, end in sorted(entries, key=lambda e: (e[3], e[4])):
            if begin != position:
                raise bad(
                    f"tensor {name!r:.100} starts at byte {begin} but the previous one ends at {position} "
                    "(gap or overlap)"
                )
            position = end
        if position > data_size:
            raise bad(f"truncated: the header describes {position} data bytes, the file holds {data_size}")
        if position < data_size:
            raise bad(f"{data_size - position} bytes of data are not described by the header")
    return entries, metadata, 8 + size


def _check_entry(name, entry, bad):
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise bad(f"entry {name!r:.100} must have exactly the fields dtype, shape and data_offsets, got {entry!r:.200}")
    code, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not isinstance(code, str) or code not in _DTYPES:
        raise bad(f"tensor {name!r:.100} has unsupported dtype {code!r:.100}")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise bad(f"tensor {name!r:.100} has an invalid shape {shape!r:.200}")
    problem = shape_problem(shape, np.dtype(_DTYPES[code]).itemsize)  # first: bounds the rank, so prod is cheap
    if problem:
        raise bad(f"tensor {name!r:.100}: {problem}")
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
        or not 0 <= offsets[0] <= offsets[1]
    ):
        raise bad(f"tensor {name!r:.100} has invalid data_offsets {offsets!r:.200}")
    expected = math.prod(shape) * np.dtype(_DTYPES[code]).itemsize  # Python ints: no int64 wrap-around
    if offsets[1] - offsets[0] != expected:
        raise bad(
            f"tensor {name!r:.100}: {code} of shape {shape} needs {expected} bytes but its data_offsets "
            f"{offsets} span {offsets[1] - offsets[0]}"
        )
    return code, tuple(shape), offsets[0], offsets[1]
