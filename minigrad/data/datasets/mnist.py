"""MNIST, Fashion-MNIST and KMNIST from IDX files in a local directory.

The IDX format: two zero bytes, a type code, the number of dimensions d, then d big-endian
uint32 sizes, then the values, big-endian, row-major. The reader checks every part of that
against the file's length, so a corrupted or truncated file fails with a message that says
what is wrong instead of producing garbage images.
"""
from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from ..dataset import TensorDataset
from .download import fetch

_IDX_TYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
              0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def _read_bytes(path: Path) -> bytes:
    if path.suffix != ".gz":
        return path.read_bytes()
    try:
        return gzip.decompress(path.read_bytes())
    except (OSError, EOFError, zlib.error) as error:
        raise ValueError(f"{path}: not a valid gzip file ({error}); the download is probably incomplete "
                         f"or corrupted — delete it and fetch it again") from None


def read_idx(path) -> np.ndarray:
    """Reads one IDX file (optionally gzip-compressed, ``.gz``) into a native-endian array."""
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise ValueError(f"{path}: truncated IDX file: {len(raw)} bytes, shorter than the 4-byte magic number")
    if raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise ValueError(f"{path}: not an IDX file: magic number 0x{raw[:4].hex()} (expected 0x0000TTDD with "
                         f"type code TT in {{{', '.join(f'{t:02x}' for t in _IDX_TYPES)}}})")
    dtype, ndim = _IDX_TYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header: {ndim} dimensions need {header} bytes, the file has {len(raw)}")
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    found = len(raw) - header
    if found < expected:
        raise ValueError(f"{path}: truncated IDX file: shape {shape} of {dtype.name} needs {expected} bytes of "
                         f"data, found {found}")
    if found > expected:
        raise ValueError(f"{path}: corrupted IDX file: {found - expected} bytes after the {expected} bytes "
                         f"that shape {shape} of {dtype.name} needs")
    array = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("=")) if dtype.byteorder == ">" else array.copy()


class MNIST(TensorDataset):
    """MNIST from ``root``: images (N, 1, 28, 28) in [0, 1], labels 0-9.

    ``root`` holds the four standard files (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``), each plain or gzip-compressed (``.gz``).
    ``download=True`` fetches missing ones from the mirrors and verifies their MD5 checksums.
    """

    classes = tuple(str(d) for d in range(10))
    mirrors = ["https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"]
    checksums = {"train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                 "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
                 "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
                 "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c"}

    def __init__(self, root, train: bool = True, download: bool = False):
        self.root, self.train = Path(root), train
        prefix = "train" if train else "t10k"
        images = read_idx(self._find(f"{prefix}-images-idx3-ubyte", download))
        labels = read_idx(self._find(f"{prefix}-labels-idx1-ubyte", download))
        name = type(self).__name__
        if images.ndim != 3 or images.dtype != np.uint8:
            raise ValueError(f"{name}: image file holds {images.dtype} of shape {images.shape}, expected uint8 (N, H, W)")
        if labels.ndim != 1 or labels.dtype != np.uint8:
            raise ValueError(f"{name}: label file holds {labels.dtype} of shape {labels.shape}, expected uint8 (N,)")
        if len(images) != len(labels):
            raise ValueError(f"{name}: {len(images)} images but {len(labels)} labels in {self.root}")
        if len(labels) and labels.max() >= len(self.classes):
            raise ValueError(f"{name}: label {labels.max()} outside 0..{len(self.classes) - 1}")
        super().__init__((images / np.float32(255))[:, None].astype(np.float32), labels.astype(np.int64))

    def _find(self, stem: str, download: bool) -> Path:
        for candidate in (self.root / stem, self.root / f"{stem}.gz"):
            if candidate.exists():
                return candidate
        if download:
            return fetch(f"{stem}.gz", self.mirrors, self.checksums[f"{stem}.gz"], self.root, type(self).__name__)
        raise FileNotFoundError(
            f"{type(self).__name__}: {stem} (or {stem}.gz) not found in {self.root.resolve()}. Put the four "
            f"standard files there ({', '.join(self.checksums)}) or pass download=True.")


class FashionMNIST(MNIST):
    """Fashion-MNIST (Zalando's clothing images), same files and format as MNIST."""

    classes = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
    mirrors = ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"]
    checksums = {"train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                 "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
                 "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
                 "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310"}


class KMNIST(MNIST):
    """Kuzushiji-MNIST (cursive Japanese characters), same files and format as MNIST."""

    classes = ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo")
    mirrors = ["http://codh.rois.ac.jp/kmnist/dataset/kmnist/"]
    checksums = {"train-images-idx3-ubyte.gz": "bdb82020997e1d708af4cf47b453dcf7",
                 "train-labels-idx1-ubyte.gz": "e144d726b3acfaa3e44228e80efcd344",
                 "t10k-images-idx3-ubyte.gz": "5c965bf0a639b31b8f53240b1b52f4d7",
                 "t10k-labels-idx1-ubyte.gz": "7320c461ea6c1c855c0b718fb2a4b134"}
