"""CIFAR-10 from the standard python-format batches in a local directory.

Those batches are pickles (of dicts holding a uint8 array and a list of labels), and loading a
pickle can run any code the file names. So they are read with :class:`BatchUnpickler`, which
resolves only the handful of numpy names that rebuild an array and refuses every other global:
a tampered file raises ``UnsafePickleError`` (a ``pickle.UnpicklingError`` and a
:class:`minigrad.io.CorruptFileError`) instead of running anything.

Even numpy's own names are dangerous when the file supplies their arguments: an array of
dtype ``object`` (or a structured dtype with an object field, or a dtype whose pickled flags
claim it holds references) makes numpy read the file's raw bytes as pointers, and crashes the
process. So the unpickler never hands numpy's real ``dtype``/``ndarray`` machinery to the file;
it builds arrays itself, only of plain numbers (bool, signed and unsigned integers, floats),
from a byte string whose length must match the shape.
"""

from __future__ import annotations

import io
import math
import pickle
import pickletools
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ...io import CorruptFileError, shape_problem, write_atomically
from ..dataset import TensorDataset
from .download import fetch

if TYPE_CHECKING:  # annotations only
    import os
    from typing import BinaryIO


class UnsafePickleError(pickle.UnpicklingError, CorruptFileError):
    """The file names something other than plain data: it was refused, nothing ran."""


class _Refused(Exception):
    """Raised inside unpickling, where the file's path is not known; becomes UnsafePickleError."""


# The only element types an unpickled array may have (bool, int, uint, float): numbers whose
# bytes are just values, never pointers, fields or anything numpy interprets further.
_PLAIN_KINDS = "biuf"


def _plain(dtype: np.dtype) -> np.dtype:
    if dtype.kind not in _PLAIN_KINDS or dtype.fields is not None or dtype.subdtype is not None or dtype.hasobject:
        raise _Refused(f"refusing an array of dtype {dtype}: only bool, integer and float arrays are allowed")
    return dtype


def _text(value, what: str) -> str:
    """Python 2 pickles (read with encoding='bytes') give bytes where Python 3 ones give str."""
    if isinstance(value, bytes):
        value = value.decode("latin1")
    if not isinstance(value, str):
        raise _Refused(f"refusing {what} {value!r:.100}: expected a string")
    return value


class _DtypeRecipe:
    """What ``numpy.dtype(...)`` gives inside the unpickler: a checked plain numpy dtype.

    numpy's pickle of a dtype is ``dtype('f4', False, True)`` followed by ``__setstate__``
    (BUILD) with ``(3, '<', None, None, None, -1, -1, 0)``; that state can also carry fields,
    sizes and flags, which is how a file turns harmless bytes into 'pointers'. So the only
    state accepted here is a byte order on an otherwise empty state."""

    __slots__ = ("dtype",)

    def __init__(self, code, align=False, copy=False):
        code = _text(code, "dtype code")
        try:
            dtype = np.dtype(code)
        except (TypeError, ValueError) as error:
            raise _Refused(f"refusing dtype code {code!r} ({error})") from None
        self.dtype = _plain(dtype)

    def __setstate__(self, state):
        if not (
            isinstance(state, tuple)
            and len(state) in (8, 9)
            and state[0] in (3, 4)
            and state[2:8] == (None, None, None, -1, -1, 0)
            and state[8:] in ((), (None,))
        ):
            raise _Refused(f"refusing dtype state {state!r:.200}: a plain dtype's state holds only a byte order")
        order = _text(state[1], "byte order")
        if order not in ("<", ">", "|", "="):
            raise _Refused(f"refusing byte order {order!r}")
        if order in "<>":
            self.dtype = self.dtype.newbyteorder(order)


class _ArrayRecipe:
    """What numpy's array rebuilding gives inside the unpickler; ``array`` is set once, from
    the pickled state, and :func:`_unwrap` swaps the recipe for it after unpickling."""

    __slots__ = ("array",)

    def __init__(self):
        self.array = None

    def __setstate__(self, state):
        if self.array is not None:
            raise _Refused("refusing a second __setstate__ on an array")
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise _Refused(
                f"refusing ndarray state of type {type(state).__name__}: expected (shape, dtype, fortran, bytes)"
            )
        shape, dtype, fortran, raw = state[-4:]
        self.array = _array(raw, dtype, shape, "F" if fortran else "C")


def _array(raw, dtype, shape, order: str) -> np.ndarray:
    """A fresh array of a checked plain dtype from exactly ``prod(shape) * itemsize`` bytes."""
    if not isinstance(dtype, _DtypeRecipe):
        raise _Refused(f"refusing an array whose dtype is a {type(dtype).__name__}, not numpy.dtype")
    if not isinstance(raw, (bytes, bytearray)):
        raise _Refused(f"refusing array data of type {type(raw).__name__}: expected bytes")
    if not (isinstance(shape, tuple) and all(type(n) is int and n >= 0 for n in shape)):
        raise _Refused(f"refusing array shape {shape!r:.200}")
    problem = shape_problem(shape, dtype.dtype.itemsize)
    if problem:
        raise _Refused(f"refusing an array: {problem}")
    needed = math.prod(shape) * dtype.dtype.itemsize  # Python ints: no overflow
    if needed != len(raw):
        raise _Refused(
            f"array of shape {shape} and dtype {dtype.dtype} needs {needed} bytes, the file holds {len(raw)}"
        )
    return np.frombuffer(raw, dtype=dtype.dtype).reshape(shape, order=order).copy(order="C")


def _reconstruct(subtype, shape, typecode):
    """numpy's ``_reconstruct(ndarray, (0,), b'b')``: an empty array that BUILD then fills."""
    if subtype is not _NDARRAY:
        raise _Refused("refusing to reconstruct an array of a class other than numpy.ndarray")
    return _ArrayRecipe()


def _frombuffer(raw, dtype, shape, order):
    """numpy's protocol-5 ``_frombuffer(buffer, dtype, shape, order)``."""
    recipe = _ArrayRecipe()
    order = _text(order, "order")
    if order not in ("C", "F"):
        raise _Refused(f"refusing array order {order!r:.20}")
    recipe.array = _array(raw, dtype, shape, order)
    return recipe


def _latin1_encode(text, encoding="latin1"):
    """Python 3 pickles of bytes (protocol < 3) rebuild them with ``_codecs.encode(s, 'latin1')``."""
    if encoding != "latin1" or not isinstance(text, str):
        raise _Refused(f"refusing _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


class _Global:
    """A name the unpickler resolves: callable, but nothing about it can be changed (BUILD on
    the global itself, which would set attributes such as a function's defaults, is refused)."""

    __slots__ = ("name", "function")

    def __init__(self, name, function):
        self.name, self.function = name, function

    def __call__(self, *args):
        if self.function is None:
            raise _Refused(f"refusing to call {self.name}")
        return self.function(*args)

    def __setstate__(self, state):
        raise _Refused(f"refusing to change {self.name}")


_NDARRAY = _Global("numpy.ndarray", None)  # only ever an argument of _reconstruct


class BatchUnpickler(pickle.Unpickler):
    """An unpickler for plain data: dicts, lists, numbers, strings, bytes and numpy arrays of
    plain numbers (built by :class:`_ArrayRecipe` stand-ins, which :meth:`load` swaps for the arrays).

    The only globals it resolves are the ones numpy's own array pickles reference (array and
    dtype reconstruction, under both numpy 1's ``numpy.core`` and numpy 2's ``numpy._core``
    names), and those to checked stand-ins; anything else — ``os.system``, ``builtins.eval``,
    any class, numpy scalars — is refused with :class:`UnsafePickleError` naming ``path``.
    """

    allowed = {
        ("numpy", "ndarray"): _NDARRAY,
        ("numpy", "dtype"): _Global("numpy.dtype", _DtypeRecipe),
        ("_codecs", "encode"): _Global("_codecs.encode", _latin1_encode),
    }
    for _package in ("numpy.core", "numpy._core"):
        allowed[(f"{_package}.multiarray", "_reconstruct")] = _Global(
            f"{_package}.multiarray._reconstruct", _reconstruct
        )
        allowed[(f"{_package}.numeric", "_frombuffer")] = _Global(f"{_package}.numeric._frombuffer", _frombuffer)
    del _package

    def __init__(self, file: BinaryIO, *, path: str | os.PathLike = "<pickle>", **kwargs: Any):
        super().__init__(file, **kwargs)
        self.path = path

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self.allowed[(module, name)]
        except KeyError:
            raise _Refused(
                f"refusing to load {module}.{name}: a CIFAR batch holds only plain data and numpy arrays, "
                f"so this file is not one (it may be malicious)"
            ) from None

    def load(self) -> Any:
        """The unpickled object, with arrays in place of their stand-ins at the top level and in
        a top-level dict's values (where a batch keeps them)."""
        try:
            result = super().load()
        except _Refused as error:
            raise UnsafePickleError(self.path, str(error)) from None
        if isinstance(result, dict):
            return {key: _unwrap(value) for key, value in result.items()}
        return _unwrap(result)


def _check_memo_indexes(blob: bytes, path) -> None:
    """CPython's unpickler sizes its memo table by the largest index a PUT names: 12 bytes
    asking for index 100,000,000 allocate and clear 800 MB. A pickler numbers memo entries
    0, 1, 2, ..., so an index beyond the count of entries so far is refused before unpickling."""
    stored = 0
    for opcode, argument, _ in pickletools.genops(blob):
        if opcode.name in ("PUT", "BINPUT", "LONG_BINPUT"):
            if not isinstance(argument, int) or argument > stored:
                raise CorruptFileError(
                    path, f"memo index {argument} after {stored} memo entries: not a pickle any pickler writes"
                )
            stored += 1
        elif opcode.name == "MEMOIZE":
            stored += 1
        if opcode.name == "STOP":
            return


def _unwrap(value):
    return value.array if isinstance(value, _ArrayRecipe) else value


def load_batch(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 batch file -> (images (N, 3, 32, 32) uint8, labels (N,) int64), validated.

    The file must hold a dict with ``data``: a uint8 array of shape (N, 3072) (each row the
    red, green and blue 32x32 planes) or already (N, 3, 32, 32), and ``labels``: N integers
    in 0..9 (a list, or an integer array). Anything else raises :class:`CorruptFileError`
    naming the file (:class:`UnsafePickleError` for a pickle that names code or builds an
    array of anything but plain numbers); nothing is truncated or converted silently.
    """
    path = Path(path)
    blob = path.read_bytes()
    try:
        _check_memo_indexes(blob, path)
        batch = BatchUnpickler(io.BytesIO(blob), path=path, encoding="bytes").load()
    except CorruptFileError:
        raise
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        IndexError,
        AttributeError,
        KeyError,
        OverflowError,
        RecursionError,
        MemoryError,
    ) as error:
        raise CorruptFileError(
            path,
            f"not a readable CIFAR-10 batch ({type(error).__name__}: {error}); the file "
            f"is probably truncated or corrupted",
        ) from None
    if not isinstance(batch, dict):
        raise CorruptFileError(path, f"a CIFAR-10 batch is a dict, this file holds a {type(batch).__name__}")
    # Python 2 batches have byte-string keys; latin-1 decodes any bytes, so no key can fail.
    batch = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in batch.items()}
    data = batch.get("data")
    if (
        not isinstance(data, np.ndarray)
        or data.dtype != np.uint8
        or not (data.shape[1:] == (3072,) or data.shape[1:] == (3, 32, 32))
    ):
        found = f"{data.dtype} of shape {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise CorruptFileError(path, f"'data' must be a uint8 array (N, 3072) or (N, 3, 32, 32), found {found}")
    return data.reshape(-1, 3, 32, 32), _labels(batch.get("labels"), len(data), path)


def _labels(labels, count: int, path) -> np.ndarray:
    """``count`` class indices 0..9 from a list of ints or an integer array, never truncated."""
    if labels is None:
        raise CorruptFileError(path, "no 'labels' entry")
    if isinstance(labels, np.ndarray) and labels.ndim == 1 and labels.dtype.kind in "iu":
        values = labels.tolist()
    elif isinstance(labels, list) and all(type(v) is int for v in labels):  # (bool is not a label)
        values = labels
    else:
        if isinstance(labels, np.ndarray):
            found = f"a {labels.dtype} array of shape {labels.shape}"
        elif isinstance(labels, list):
            bad = next(v for v in labels if type(v) is not int)
            found = f"{bad!r} ({type(bad).__name__}) at position {labels.index(bad)}"
        else:
            found = f"a {type(labels).__name__}"
        raise CorruptFileError(path, f"labels must be integers 0..9 (a list or an integer array), found {found}")
    if len(values) != count:
        raise CorruptFileError(path, f"{count} images but {len(values)} labels")
    if values and (min(values) < 0 or max(values) > 9):
        raise CorruptFileError(path, f"labels outside 0..9 (min {min(values)}, max {max(values)})")
    return np.array(values, dtype=np.int64)


class CIFAR10(TensorDataset):
    """CIFAR-10 from ``root``: images (N, 3, 32, 32) in [0, 1], ten classes.

    ``root`` holds the python-format batches (``data_batch_1`` .. ``data_batch_5``,
    ``test_batch``), directly or in ``cifar-10-batches-py/`` as the archive unpacks.
    ``download=True`` fetches ``cifar-10-python.tar.gz``, checks its MD5 and extracts only the
    batch files (member names are never used as paths).
    """

    classes = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
    mirrors = ["https://www.cs.toronto.edu/~kriz/"]
    archive, archive_md5, folder = "cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a", "cifar-10-batches-py"
    train_files = tuple(f"data_batch_{i}" for i in range(1, 6))
    test_files = ("test_batch",)

    def __init__(
        self, root: str | os.PathLike, train: bool = True, download: bool = False, transform=None, target_transform=None
    ):
        self.root, self.train = Path(root), train
        names = self.train_files if train else self.test_files
        directory = self._directory(names, download)
        batches = [load_batch(directory / name) for name in names]
        images = np.concatenate([b[0] for b in batches])
        labels = np.concatenate([b[1] for b in batches])
        super().__init__(
            (images / np.float32(255)).astype(np.float32),
            labels,
            transform=transform,
            target_transform=target_transform,
        )

    def _directory(self, names, download: bool) -> Path:
        for directory in (self.root / self.folder, self.root):
            if all((directory / name).exists() for name in names):
                return directory
        if not download:
            raise FileNotFoundError(
                f"CIFAR10: batch files {', '.join(names)} not found in {self.root.resolve()} or its "
                f"{self.folder}/ folder. Unpack {self.archive} there or pass download=True."
            )
        archive = fetch(self.archive, self.mirrors, self.archive_md5, self.root, "CIFAR10")
        self._extract(archive)
        return self.root / self.folder

    def _extract(self, archive: Path) -> None:
        out = self.root / self.folder
        out.mkdir(parents=True, exist_ok=True)
        wanted = {f"{self.folder}/{name}" for name in self.train_files + self.test_files + ("batches.meta",)}
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar.getmembers():
                if member.name not in wanted or not member.isfile():
                    continue
                write_atomically(out / Path(member.name).name, [tar.extractfile(member).read()])
