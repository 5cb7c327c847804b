"""CIFAR-10 from the standard python-format batches in a local directory.

Those batches are pickles (of dicts holding a uint8 array and a list of labels), and loading a
pickle can run any code the file names. So they are read with :class:`BatchUnpickler`, which
resolves only the handful of numpy functions that rebuild an array and refuses every other
global: a tampered file raises ``UnsafePickleError`` (a ``pickle.UnpicklingError``) instead of running anything.
"""
from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path

import numpy as np

from ...io import write_atomically
from ..dataset import TensorDataset
from .download import fetch


class UnsafePickleError(pickle.UnpicklingError):
    """The file names something other than plain data: it was refused, nothing ran."""


def _latin1_encode(text, encoding="latin1"):
    """Python 3 pickles of bytes (protocol < 3) rebuild them with ``_codecs.encode(s, 'latin1')``."""
    if encoding != "latin1" or not isinstance(text, str):
        raise UnsafePickleError(f"refusing _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


class BatchUnpickler(pickle.Unpickler):
    """An unpickler for plain data: dicts, lists, numbers, strings, bytes and numpy arrays.

    The only globals it resolves are the ones numpy's own array pickles reference (array and
    dtype reconstruction, under both numpy 1's ``numpy.core`` and numpy 2's ``numpy._core``
    names); anything else — ``os.system``, ``builtins.eval``, any class — is refused.
    """

    _reconstruct = np.zeros(1).__reduce__()[0]          # numpy's array-rebuilding function
    _frombuffer = np.zeros(1).__reduce_ex__(5)[0]       # the protocol-5 variant
    allowed = {}
    for _package in ("numpy.core", "numpy._core"):
        allowed[(f"{_package}.multiarray", "_reconstruct")] = _reconstruct
        allowed[(f"{_package}.numeric", "_frombuffer")] = _frombuffer
    allowed.update({("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
                    ("_codecs", "encode"): _latin1_encode})
    del _package

    def find_class(self, module, name):
        try:
            return self.allowed[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"refusing to load {module}.{name}: a CIFAR batch holds only plain data and numpy arrays, "
                f"so this file is not one (it may be malicious)") from None


def load_batch(path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 batch file -> (images (N, 3, 32, 32) uint8, labels (N,) int64), validated."""
    path = Path(path)
    try:
        batch = BatchUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
    except UnsafePickleError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, AttributeError) as error:
        raise ValueError(f"{path}: not a readable CIFAR-10 batch ({type(error).__name__}: {error}); "
                         f"the file is probably truncated or corrupted") from None
    if not isinstance(batch, dict):
        raise ValueError(f"{path}: a CIFAR-10 batch is a dict, this file holds a {type(batch).__name__}")
    batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
    data, labels = batch.get("data"), batch.get("labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise ValueError(f"{path}: 'data' must be a uint8 array (N, 3072), found "
                         f"{getattr(data, 'dtype', type(data).__name__)} {getattr(data, 'shape', '')}")
    labels = np.asarray(labels, dtype=np.int64) if labels is not None else np.empty(0, np.int64)
    if labels.shape != (len(data),):
        raise ValueError(f"{path}: {len(data)} images but labels of shape {labels.shape}")
    if len(labels) and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"{path}: labels outside 0..9 (min {labels.min()}, max {labels.max()})")
    return data.reshape(-1, 3, 32, 32), labels


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

    def __init__(self, root, train: bool = True, download: bool = False):
        self.root, self.train = Path(root), train
        names = self.train_files if train else self.test_files
        directory = self._directory(names, download)
        batches = [load_batch(directory / name) for name in names]
        images = np.concatenate([b[0] for b in batches])
        labels = np.concatenate([b[1] for b in batches])
        super().__init__((images / np.float32(255)).astype(np.float32), labels)

    def _directory(self, names, download: bool) -> Path:
        for directory in (self.root / self.folder, self.root):
            if all((directory / name).exists() for name in names):
                return directory
        if not download:
            raise FileNotFoundError(
                f"CIFAR10: batch files {', '.join(names)} not found in {self.root.resolve()} or its "
                f"{self.folder}/ folder. Unpack {self.archive} there or pass download=True.")
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
