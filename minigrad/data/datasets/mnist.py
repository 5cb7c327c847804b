"""MNIST, Fashion-MNIST and KMNIST from IDX files in a local directory.

The IDX format: two zero bytes, a type code, the number of dimensions d, then d big-endian
uint32 sizes, then the values, big-endian, row-major. The reader reads the header first, then
exactly the bytes it declares (at most :data:`MAX_IDX_BYTES`), then checks nothing follows. So
a corrupted or truncated file fails with a :class:`~minigrad.io.CorruptFileError` that names the
file and says what is wrong instead of producing garbage images, and a small ``.gz`` that
inflates far beyond its header (a "gzip bomb") is stopped one block past the declared size.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ...io import MAX_DIMENSIONS, CorruptFileError, shape_problem
from ..dataset import TensorDataset
from .download import fetch

if TYPE_CHECKING:  # annotations only
    import os

_IDX_TYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

# The largest data an IDX header may declare: 4x the largest published IDX file (EMNIST
# by_class, 550 MB). Without a limit, a corrupted header (or a .gz built to inflate) decides
# how much memory the reader takes.
MAX_IDX_BYTES = 2 << 30
_BLOCK = 1 << 20


def _read_up_to(f, size: int) -> bytearray:
    """At most ``size`` bytes, read a block at a time, so memory follows what the file
    actually holds rather than what its header claims (and grows in place: no second copy)."""
    data = bytearray()
    while len(data) < size:
        chunk = f.read(min(size - len(data), _BLOCK))
        if not chunk:
            break
        data += chunk
    return data


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Reads one IDX file (optionally gzip-compressed, ``.gz``) into a native-endian array.
    Raises :class:`~minigrad.io.CorruptFileError` (a ValueError) naming the file for a bad
    magic number, a header over :data:`MAX_IDX_BYTES`, a truncated file, trailing data, or a
    damaged gzip stream."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            return _read_idx(f, path)
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:  # raised only by gzip
        raise CorruptFileError(
            path,
            f"not a valid gzip file ({error}); the download is probably incomplete "
            f"or corrupted — delete it and fetch it again",
        ) from None


def _read_idx(f, path: Path) -> np.ndarray:
    magic = _read_up_to(f, 4)
    if len(magic) < 4:
        raise CorruptFileError(path, f"truncated IDX file: {len(magic)} bytes, shorter than the 4-byte magic number")
    if magic[0] != 0 or magic[1] != 0 or magic[2] not in _IDX_TYPES:
        raise CorruptFileError(
            path,
            f"not an IDX file: magic number 0x{magic.hex()} (expected 0x0000TTDD with "
            f"type code TT in {{{', '.join(f'{t:02x}' for t in _IDX_TYPES)}}})",
        )
    dtype, ndim = _IDX_TYPES[magic[2]], magic[3]
    if ndim > MAX_DIMENSIONS:
        raise CorruptFileError(
            path, f"corrupted IDX header: {ndim} dimensions (numpy arrays have at most {MAX_DIMENSIONS})"
        )
    sizes = _read_up_to(f, 4 * ndim)
    if len(sizes) < 4 * ndim:
        raise CorruptFileError(
            path, f"truncated IDX header: {ndim} dimensions need {4 + 4 * ndim} bytes, the file has {4 + len(sizes)}"
        )
    shape = struct.unpack(f">{ndim}I", sizes)
    expected = math.prod(shape) * dtype.itemsize  # Python ints: 4 sizes of 2**32 cannot wrap around
    if expected > MAX_IDX_BYTES:
        raise CorruptFileError(
            path,
            f"corrupted IDX header: shape {shape} of {dtype.name} declares {expected} bytes "
            f"of data, over the {MAX_IDX_BYTES} byte limit (minigrad.data.datasets.mnist."
            f"MAX_IDX_BYTES)",
        )
    problem = shape_problem(shape, dtype.itemsize)
    if problem:
        raise CorruptFileError(path, f"corrupted IDX header: {problem}")
    data = _read_up_to(f, expected)
    if len(data) < expected:
        raise CorruptFileError(
            path, f"truncated IDX file: shape {shape} of {dtype.name} needs {expected} bytes of data, found {len(data)}"
        )
    extra = f.read(_BLOCK)  # (for a .gz, also where the CRC is checked)
    if extra:
        what = "more data" if len(extra) == _BLOCK else f"{len(extra)} bytes"
        raise CorruptFileError(
            path, f"corrupted IDX file: {what} after the {expected} bytes that shape {shape} of {dtype.name} needs"
        )
    array = np.frombuffer(data, dtype=dtype).reshape(shape)
    return array.astype(dtype.newbyteorder("=")) if dtype.byteorder == ">" else array.copy()


class MNIST(TensorDataset):
    """MNIST from ``root``: images (N, 1, 28, 28) in [0, 1], labels 0-9.

    ``root`` holds the four standard files (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``), each plain or gzip-compressed (``.gz``).
    ``download=True`` fetches missing ones from the mirrors and verifies their MD5 checksums.
    """

    classes = tuple(str(d) for d in range(10))
    mirrors = ["https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"]
    checksums = {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    }

    def __init__(
        self, root: str | os.PathLike, train: bool = True, download: bool = False, transform=None, target_transform=None
    ):
        self.root, self.train = Path(root), train
        prefix = "train" if train else "t10k"
        images_path = self._find(f"{prefix}-images-idx3-ubyte", download)
        labels_path = self._find(f"{prefix}-labels-idx1-ubyte", download)
        images, labels = read_idx(images_path), read_idx(labels_path)
        if images.ndim != 3 or images.dtype != np.uint8:
            raise CorruptFileError(
                images_path, f"holds {images.dtype} of shape {images.shape}, expected uint8 (N, H, W) images"
            )
        if labels.ndim != 1 or labels.dtype != np.uint8:
            raise CorruptFileError(
                labels_path, f"holds {labels.dtype} of shape {labels.shape}, expected uint8 (N,) labels"
            )
        if len(images) != len(labels):
            raise CorruptFileError(
                labels_path, f"{len(images)} images but {len(labels)} labels (the images are in {images_path.name})"
            )
        if len(labels) and labels.max() >= len(self.classes):
            raise CorruptFileError(labels_path, f"label {labels.max()} outside 0..{len(self.classes) - 1}")
        super().__init__(
            (images / np.float32(255))[:, None].astype(np.float32),
            labels.astype(np.int64),
            transform=transform,
            target_transform=target_transform,
        )

    def _find(self, stem: str, download: bool) -> Path:
        for candidate in (self.root / stem, self.root / f"{stem}.gz"):
            if candidate.exists():
                return candidate
        if download:
            return fetch(f"{stem}.gz", self.mirrors, self.checksums[f"{stem}.gz"], self.root, type(self).__name__)
        raise FileNotFoundError(
            f"{type(self).__name__}: {stem} (or {stem}.gz) not found in {self.root.resolve()}. Put the four "
            f"standard files there ({', '.join(self.checksums)}) or pass download=True."
        )


class FashionMNIST(MNIST):
    """Fashion-MNIST (Zalando's clothing images), same files and format as MNIST."""

    classes = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
    mirrors = ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"]
    checksums = {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    }


class KMNIST(MNIST):
    """Kuzushiji-MNIST (cursive Japanese characters), same files and format as MNIST."""

    classes = ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo")
    mirrors = ["http://codh.rois.ac.jp/kmnist/dataset/kmnist/"]
    checksums = {
        "train-images-idx3-ubyte.gz": "bdb82020997e1d708af4cf47b453dcf7",
        "train-labels-idx1-ubyte.gz": "e144d726b3acfaa3e44228e80efcd344",
        "t10k-images-idx3-ubyte.gz": "5c965bf0a639b31b8f53240b1b52f4d7",
        "t10k-labels-idx1-ubyte.gz": "7320c461ea6c1c855c0b718fb2a4b134",
    }
