"""Offline datasets and file readers, on small files the tests write (nothing is downloaded)."""
import gzip
import hashlib
import io
import os
import pickle
import struct
import urllib.error

import numpy as np
import pytest

from minigrad.data import CIFAR10, MNIST, Digits, FashionMNIST, Shapes, read_idx
from minigrad.data.datasets import download


def _idx_bytes(array: np.ndarray, type_code: int) -> bytes:
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def _write_mnist(root, n_train=6, n_test=4, compress=False):
    rng = np.random.default_rng(0)
    data = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        for stem, array, code in ((f"{prefix}-images-idx3-ubyte", images, 0x08), (f"{prefix}-labels-idx1-ubyte", labels, 0x08)):
            raw = _idx_bytes(array, code)
            if compress:
                (root / f"{stem}.gz").write_bytes(gzip.compress(raw))
            else:
                (root / stem).write_bytes(raw)
        data[prefix] = (images, labels)
    return data


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_reads_idx_files(tmp_path, compress):
    data = _write_mnist(tmp_path, compress=compress)
    train, test = MNIST(tmp_path), FashionMNIST(tmp_path, train=False)
    assert len(train) == 6 and len(test) == 4
    x, y = train.arrays
    assert x.shape == (6, 1, 28, 28) and x.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_allclose(x[:, 0], data["train"][0] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, data["train"][1])
    np.testing.assert_array_equal(test.arrays[1], data["t10k"][1])


@pytest.mark.parametrize("dtype,code", [(np.int16, 0x0B), (np.int32, 0x0C), (np.float32, 0x0D), (np.float64, 0x0E)])
def test_idx_big_endian_types(tmp_path, dtype, code):
    array = np.arange(-6, 6).astype(dtype).reshape(3, 2, 2)
    (tmp_path / "f").write_bytes(_idx_bytes(array, code))
    out = read_idx(tmp_path / "f")
    np.testing.assert_array_equal(out, array)
    assert out.dtype.isnative


@pytest.mark.parametrize("mangle,message", [
    (lambda raw: raw[:3], "shorter than the 4-byte magic number"),
    (lambda raw: b"\x00\x01" + raw[2:], "not an IDX file: magic number 0x0001"),
    (lambda raw: raw[:2] + b"\x07" + raw[3:], "not an IDX file"),
    (lambda raw: raw[:10], "truncated IDX header"),
    (lambda raw: raw[:-5], "needs 3136 bytes of data, found 3131"),
    (lambda raw: raw + b"xx", "2 bytes after"),
])
def test_idx_corrupted_and_truncated_files_fail_clearly(tmp_path, mangle, message):
    raw = _idx_bytes(np.zeros((4, 28, 28), np.uint8), 0x08)
    (tmp_path / "bad").write_bytes(mangle(raw))
    with pytest.raises(ValueError, match=message):
        read_idx(tmp_path / "bad")


def test_mnist_file_problems(tmp_path):
    _write_mnist(tmp_path, compress=True)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 3, 1, 2, 3])))
    with pytest.raises(ValueError, match="4 images but 3 labels"):
        MNIST(tmp_path, train=False)
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"\x00" * 100)[:20])
    with pytest.raises(ValueError, match="not a valid gzip file"):
        MNIST(tmp_path)
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte.*download=True"):
        MNIST(tmp_path / "empty")


def test_download_offline_says_where_to_put_the_files(tmp_path, monkeypatch):
    def offline(url, timeout):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(download.urllib.request, "urlopen", offline)
    with pytest.raises(RuntimeError, match=f"offline.*put it into {tmp_path}"):
        MNIST(tmp_path, download=True)
    assert not any(tmp_path.iterdir())  # no partial files left behind


def test_download_verifies_checksums(tmp_path, monkeypatch):
    payload = b"not the real file"

    def serve(url, timeout):
        return io.BytesIO(payload)

    monkeypatch.setattr(download.urllib.request, "urlopen", serve)
    with pytest.raises(RuntimeError, match="does not match the expected"):
        download.fetch("f.gz", ["http://mirror/"], "0" * 32, tmp_path, "Test")
    assert not any(tmp_path.iterdir())
    path = download.fetch("f.gz", ["http://mirror/"], hashlib.md5(payload).hexdigest(), tmp_path, "Test")
    assert path.read_bytes() == payload


def _write_cifar(root, protocol):
    rng = np.random.default_rng(1)
    expected = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (3, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, 3).tolist()
        with open(root / name, "wb") as f:
            pickle.dump({b"batch_label": b"x", b"data": data, b"labels": labels, b"filenames": [b"a"] * 3}, f,
                        protocol=protocol)
        expected[name] = (data, labels)
    return expected


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_cifar_reads_python_batches(tmp_path, protocol):
    expected = _write_cifar(tmp_path, protocol)
    train, test = CIFAR10(tmp_path), CIFAR10(tmp_path, train=False)
    assert len(train) == 15 and len(test) == 3
    x, y = test.arrays
    assert x.shape == (3, 3, 32, 32) and x.dtype == np.float32
    np.testing.assert_allclose(x.reshape(3, -1), expected["test_batch"][0] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, expected["test_batch"][1])
    np.testing.assert_array_equal(train.arrays[1][:3], expected["data_batch_1"][1])


class _Payload:
    def __reduce__(self):
        return (os.system, ("echo this must never run",))


def test_cifar_refuses_pickles_that_name_code(tmp_path):
    _write_cifar(tmp_path, 2)
    with open(tmp_path / "test_batch", "wb") as f:
        pickle.dump({b"data": _Payload(), b"labels": []}, f)
    with pytest.raises(pickle.UnpicklingError, match="refusing to load posix.system|refusing to load os.system"):
        CIFAR10(tmp_path, train=False)


def test_cifar_truncated_and_wrong_files(tmp_path):
    _write_cifar(tmp_path, 2)
    raw = (tmp_path / "test_batch").read_bytes()
    (tmp_path / "test_batch").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="truncated or corrupted"):
        CIFAR10(tmp_path, train=False)
    with open(tmp_path / "test_batch", "wb") as f:
        pickle.dump({b"data": np.zeros((2, 10), np.uint8), b"labels": [0, 1]}, f)
    with pytest.raises(ValueError, match=r"uint8 array \(N, 3072\)"):
        CIFAR10(tmp_path, train=False)
    with pytest.raises(FileNotFoundError, match="download=True"):
        CIFAR10(tmp_path / "nothing")


def test_shapes_is_deterministic_and_splits_differ():
    a, b = Shapes(n=200, size=16), Shapes(n=200, size=16)
    test = Shapes(n=200, size=16, train=False)
    np.testing.assert_array_equal(a.arrays[0], b.arrays[0])
    assert not np.array_equal(a.arrays[0], test.arrays[0])
    x, y = a.arrays
    assert x.shape == (200, 1, 16, 16) and x.min() >= 0 and x.max() <= 1
    assert np.bincount(y, minlength=5).min() > 20
    # without noise, disks cover more pixels than plus signs of the same radius
    clean = Shapes(n=300, size=20, noise=0.0)
    ink = clean.arrays[0].sum(axis=(1, 2, 3))
    assert ink[clean.arrays[1] == 0].mean() > ink[clean.arrays[1] == 4].mean()


def test_digits_split_and_upscaling():
    pytest.importorskip("sklearn", reason="the digits dataset comes with scikit-learn (pip install 'minigrad[datasets]')")
    train, test = Digits(), Digits(train=False)
    assert len(train) + len(test) == 1797 and len(test) == 359
    x, y = train.arrays
    assert x.shape == (1438, 1, 8, 8) and x.min() == 0 and x.max() == 1
    np.testing.assert_array_equal(np.bincount(test.arrays[1]), np.round(0.2 * np.bincount(np.concatenate([y, test.arrays[1]]))))
    big = Digits(size=28)
    assert big.arrays[0].shape == (1438, 1, 28, 28)
    np.testing.assert_array_equal(big.arrays[1], y)


def test_cifar_download_extracts_only_the_batches(tmp_path, monkeypatch):
    import tarfile

    source = tmp_path / "source" / "cifar-10-batches-py"
    source.mkdir(parents=True)
    expected = _write_cifar(source, 2)
    (tmp_path / "source" / "evil").write_text("outside")
    archive = tmp_path / "archive.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(source, arcname="cifar-10-batches-py")
        tar.add(tmp_path / "source" / "evil", arcname="../evil")          # path traversal attempt
        tar.add(tmp_path / "source" / "evil", arcname="cifar-10-batches-py/readme.html")  # not a batch
    payload = archive.read_bytes()
    monkeypatch.setattr(download.urllib.request, "urlopen", lambda url, timeout: io.BytesIO(payload))
    monkeypatch.setattr(CIFAR10, "archive_md5", hashlib.md5(payload).hexdigest())
    root = tmp_path / "root"
    test = CIFAR10(root, train=False, download=True)
    np.testing.assert_array_equal(test.arrays[1], expected["test_batch"][1])
    assert sorted(p.name for p in (root / "cifar-10-batches-py").iterdir()) == sorted(expected)
    assert not (tmp_path / "evil").exists() and not (root.parent / "evil").exists()
