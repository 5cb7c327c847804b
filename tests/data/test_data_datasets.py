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
        for stem, array, code in (
            (f"{prefix}-images-idx3-ubyte", images, 0x08),
            (f"{prefix}-labels-idx1-ubyte", labels, 0x08),
        ):
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


@pytest.mark.parametrize(
    "mangle,message",
    [
        (lambda raw: raw[:3], "shorter than the 4-byte magic number"),
        (lambda raw: b"\x00\x01" + raw[2:], "not an IDX file: magic number 0x0001"),
        (lambda raw: raw[:2] + b"\x07" + raw[3:], "not an IDX file"),
        (lambda raw: raw[:10], "truncated IDX header"),
        (lambda raw: raw[:-5], "needs 3136 bytes of data, found 3131"),
        (lambda raw: raw + b"xx", "2 bytes after"),
    ],
)
def test_idx_corrupted_and_truncated_files_fail_clearly(tmp_path, mangle, message):
    raw = _idx_bytes(np.zeros((4, 28, 28), np.uint8), 0x08)
    (tmp_path / "bad").write_bytes(mangle(raw))
    with pytest.raises(ValueError, match=message):
        read_idx(tmp_path / "bad")


def test_idx_gzip_bomb_stops_at_the_declared_size(tmp_path):
    """A 260 KB .gz that declares 10 bytes of data and inflates to 256 MB: the reader stops
    one block after the declared size (the child's peak memory is measured), instead of
    inflating it all (a 510 KB file once grew the process to 5 GB)."""
    from isolated import run_python

    megabyte_of_zeros = gzip.compress(bytes(1 << 20))  # gzip members concatenate: 256 of them, 256 MB
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 10]) + bytes(10)) + megabyte_of_zeros * 256)
    assert path.stat().st_size < 300_000
    result = run_python(
        "import resource, sys\n"
        "from minigrad.data import read_idx\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "try:\n"
        "    read_idx(sys.argv[1])\n"
        "except ValueError as error:\n"
        "    print(type(error).__name__, error)\n"
        "print('GREW', (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)\n",
        str(path),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"CorruptFileError {path}: corrupted IDX file: more data after the 10 bytes" in result.stdout
    grew_mb = int(result.stdout.split("GREW")[1])
    assert grew_mb < 32, f"reading a bomb grew the process by {grew_mb} MB"


@pytest.mark.parametrize(
    "header,message",
    [
        (bytes([0, 0, 8, 2]) + struct.pack(">II", 2**32 - 1, 2**32 - 1), r"declares 18446744065119617025 bytes.*limit"),
        (bytes([0, 0, 0x0E, 3]) + struct.pack(">III", 2**21, 2**21, 2**21), r"declares 73786976294838206464 bytes"),
        (bytes([0, 0, 8, 100]) + struct.pack(">100I", *[1] * 100), "100 dimensions"),
        (bytes([0, 0, 8, 3]) + struct.pack(">III", 0, 3037054999, 3036994129), "too large for any array"),
    ],
    ids=["4-billion-squared", "wraps-int64", "too-many-dimensions", "empty-but-too-large"],
)
def test_idx_absurd_headers_are_refused_before_reading(tmp_path, header, message):
    from minigrad.io import CorruptFileError

    for name, content in (("plain", header + bytes(16)), ("packed.gz", gzip.compress(header + bytes(16)))):
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(CorruptFileError, match=message) as error:
            read_idx(path)
        assert str(error.value).startswith(f"{path}: ")


@pytest.mark.parametrize(
    "mangle,message",
    [
        (lambda gz: gz[:-8] + bytes(8), "not a valid gzip file.*CRC"),
        (lambda gz: gz[: len(gz) // 2], "not a valid gzip file"),
        (lambda gz: gz[:10] + b"\xff" * 20 + gz[30:], "not a valid gzip file"),
        (lambda gz: b"PK" + gz[2:], "not a valid gzip file"),
    ],
    ids=["bad-crc", "cut", "garbled-deflate", "not-gzip"],
)
def test_idx_gzip_damage_is_a_corrupt_file_error(tmp_path, mangle, message):
    from minigrad.io import CorruptFileError

    path = tmp_path / "f.gz"
    path.write_bytes(mangle(gzip.compress(_idx_bytes(np.arange(200, dtype=np.uint8).reshape(10, 20), 0x08))))
    with pytest.raises(CorruptFileError, match=message) as error:
        read_idx(path)
    assert str(error.value).startswith(f"{path}: ")


def test_mnist_errors_name_the_file(tmp_path):
    from minigrad.io import CorruptFileError

    _write_mnist(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(_idx_bytes(np.array([1, 2, 12] * 2, np.uint8), 0x08))
    with pytest.raises(CorruptFileError, match=r"train-labels-idx1-ubyte: label 12 outside 0\.\.9"):
        MNIST(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(_idx_bytes(np.zeros((6, 2), np.uint8), 0x08))
    with pytest.raises(CorruptFileError, match=r"train-labels-idx1-ubyte: holds uint8 of shape \(6, 2\)"):
        MNIST(tmp_path)


def test_mnist_file_problems(tmp_path):
    _write_mnist(tmp_path, compress=True)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 3, 1, 2, 3])))
    with pytest.raises(ValueError, match="4 images but 3 labels"):
        MNIST(tmp_path, train=False)
    # (a cut download of a real IDX file: a gzip of zeros is now first refused as no IDX header)
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(
        gzip.compress(_idx_bytes(np.ones((6, 28, 28), np.uint8), 8))[:40]
    )
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
            pickle.dump(
                {b"batch_label": b"x", b"data": data, b"labels": labels, b"filenames": [b"a"] * 3}, f, protocol=protocol
            )
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
    pytest.importorskip(
        "sklearn", reason="the digits dataset comes with scikit-learn (pip install 'minigrad[datasets]')"
    )
    train, test = Digits(), Digits(train=False)
    assert len(train) + len(test) == 1797 and len(test) == 359
    x, y = train.arrays
    assert x.shape == (1438, 1, 8, 8) and x.min() == 0 and x.max() == 1
    np.testing.assert_array_equal(
        np.bincount(test.arrays[1]), np.round(0.2 * np.bincount(np.concatenate([y, test.arrays[1]])))
    )
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
        tar.add(tmp_path / "source" / "evil", arcname="../evil")  # path traversal attempt
        tar.add(tmp_path / "source" / "evil", arcname="cifar-10-batches-py/readme.html")  # not a batch
    payload = archive.read_bytes()
    monkeypatch.setattr(download.urllib.request, "urlopen", lambda url, timeout: io.BytesIO(payload))
    monkeypatch.setattr(CIFAR10, "archive_md5", hashlib.md5(payload).hexdigest())
    root = tmp_path / "root"
    test = CIFAR10(root, train=False, download=True)
    np.testing.assert_array_equal(test.arrays[1], expected["test_batch"][1])
    assert sorted(p.name for p in (root / "cifar-10-batches-py").iterdir()) == sorted(expected)
    assert not (tmp_path / "evil").exists() and not (root.parent / "evil").exists()


# ---- hostile CIFAR batches: every route numpy's own pickles offer to an array with a dtype that
# is not plain numbers (bool, ints, uints, floats) must be refused before anything is built.

_RECONSTRUCT = np.zeros(1).__reduce__()[0]  # numpy.(_)core.multiarray._reconstruct
_FROMBUFFER = np.zeros(1).__reduce_ex__(5)[0]  # numpy.(_)core.numeric._frombuffer


class _Dtype:
    """Pickles as numpy.dtype(*args) followed by dtype.__setstate__(state) (BUILD)."""

    def __init__(self, args, state):
        self.args, self.state = args, state

    def __reduce__(self):
        return (np.dtype, self.args, self.state)


class _Array:
    """Pickles as _reconstruct(ndarray, (0,), b'b') followed by ndarray.__setstate__(state)."""

    def __init__(self, state):
        self.state = state

    def __reduce__(self):
        return (_RECONSTRUCT, (np.ndarray, (0,), b"b"), self.state)


class _Call:
    """Pickles as function(*args) (REDUCE), optionally followed by BUILD with ``state``."""

    def __init__(self, function, args, state=None):
        self.function, self.args, self.state = function, args, state

    def __reduce__(self):
        return (self.function, self.args) if self.state is None else (self.function, self.args, self.state)


def _object_field_claiming_references():
    # A structured dtype with an object field whose flags say it holds references: numpy then
    # reads the array's raw bytes as PyObject pointers (this one segfaulted the reader).
    return _Dtype(("V8", False, True), (3, "|", None, ("a",), {"a": (np.dtype("O"), 0)}, 8, 1, 1))


def _batch(data, labels=(0,)):
    return pickle.dumps({b"data": data, b"labels": list(labels)}, protocol=2)


_HOSTILE_BATCHES = {
    "object-dtype": _batch(_Array((1, (1,), np.dtype("O"), False, b"A" * 8))),
    "object-field-with-refcount-flag": _batch(_Array((1, (1,), _object_field_claiming_references(), False, b"A" * 8))),
    "float-dtype-setstate-refcount-flag": _batch(
        _Array((1, (1,), _Dtype(("f8", False, True), (3, "<", None, None, None, -1, -1, 1)), False, b"A" * 8))
    ),
    "void-dtype": _batch(_Array((1, (1,), np.dtype("V8"), False, b"A" * 8))),
    "structured-dtype": _batch(_Array((1, (1,), np.dtype([("a", "u1")]), False, b"A"))),
    "unicode-dtype": _batch(_Array((1, (1,), np.dtype("U2"), False, b"A" * 8))),
    "bytes-dtype": _batch(_Array((1, (1,), np.dtype("S8"), False, b"A" * 8))),
    "datetime-dtype": _batch(_Array((1, (1,), np.dtype("M8[s]"), False, b"A" * 8))),
    "complex-dtype": _batch(_Array((1, (1,), np.dtype("c16"), False, b"A" * 16))),
    "dtype-from-list": _batch(_Call(np.dtype, ([("a", "O")],))),
    "frombuffer-object-dtype": _batch(_Call(_FROMBUFFER, (b"A" * 8, np.dtype("O"), (1,), "C"))),
    "ndarray-constructor": _batch(_Call(np.ndarray, ((1,), "O", b"A" * 8))),
    "numpy-scalar": _batch(np.float64(1.5)),
    # Written opcode by opcode: BUILD applied to a global itself (setattr(_codecs.encode,
    # "__defaults__", ("utf8",))) would change the reader's own function for every later file.
    "build-on-an-allowed-global": (
        b"\x80\x02c_codecs\nencode\nN}X\x0c\x00\x00\x00__defaults__X\x04\x00\x00\x00utf8\x85s\x86b."
    ),
}


@pytest.mark.parametrize("name", sorted(_HOSTILE_BATCHES))
def test_cifar_refuses_arrays_of_anything_but_plain_numbers(tmp_path, name):
    """Each file is loaded in a child process, so a segfault fails this test instead of pytest."""
    from isolated import run_python

    path = tmp_path / "test_batch"
    path.write_bytes(_HOSTILE_BATCHES[name])
    result = run_python(
        "import sys\n"
        "from minigrad.data.datasets.cifar import load_batch, UnsafePickleError\n"
        "try:\n"
        "    load_batch(sys.argv[1])\n"
        "except UnsafePickleError as error:\n"
        "    print('REFUSED', error)\n",
        str(path),
    )
    assert result.returncode == 0, f"child died (rc {result.returncode}): {result.stdout}{result.stderr}"
    assert "REFUSED" in result.stdout and str(path) in result.stdout, result.stdout + result.stderr


def test_unsafe_pickle_error_is_also_a_corrupt_file_error():
    from minigrad.data.datasets.cifar import UnsafePickleError
    from minigrad.io import CorruptFileError

    assert issubclass(UnsafePickleError, pickle.UnpicklingError)
    assert issubclass(UnsafePickleError, CorruptFileError) and issubclass(UnsafePickleError, ValueError)


def test_cifar_huge_memo_index_is_refused_without_allocating(tmp_path):
    """LONG_BINPUT 100,000,000 makes CPython's unpickler allocate and clear an 800 MB memo table
    (1.5 GB, 6 s, for 12 bytes of file); the reader refuses it before unpickling."""
    path = tmp_path / "test_batch"
    path.write_bytes(b"\x80\x02N" + b"r" + (100_000_000).to_bytes(4, "little") + b".")
    from minigrad.io import CorruptFileError

    with pytest.raises(CorruptFileError, match="memo index 100000000"):
        from minigrad.data.datasets.cifar import load_batch

        load_batch(path)


def _cifar_file(tmp_path, batch, protocol=2):
    path = tmp_path / "test_batch"
    path.write_bytes(pickle.dumps(batch, protocol=protocol))
    return path


@pytest.mark.parametrize(
    "labels,message",
    [
        ([3.7, 1.0], r"labels must be integers.*3\.7"),
        ([1, 2.0], r"labels must be integers.*2\.0"),
        (np.array([3.7, 1.0]), "labels must be integers.*float64"),
        ([1, 10], r"labels outside 0\.\.9"),
        (np.array([-1, 3], np.int8), r"labels outside 0\.\.9"),
        ([1, 2**70], r"labels outside 0\.\.9"),
        ([1, "2"], "labels must be integers"),
        ([[1], [2]], "labels must be integers"),
        ([True, False], "labels must be integers"),
        ([1], "2 images but 1 labels"),
        (None, "no 'labels'"),
    ],
    ids=[
        "float",
        "integral-float",
        "float-array",
        "ten",
        "negative",
        "huge",
        "string",
        "nested",
        "bool",
        "too-few",
        "missing",
    ],
)
def test_cifar_refuses_bad_labels_naming_the_file(tmp_path, labels, message):
    from minigrad.data.datasets.cifar import load_batch

    batch = {b"data": np.zeros((2, 3072), np.uint8)}
    if labels is not None:
        batch[b"labels"] = labels
    path = _cifar_file(tmp_path, batch)
    with pytest.raises(ValueError, match=message) as error:
        load_batch(path)
    assert str(path) in str(error.value)


@pytest.mark.parametrize(
    "data,message",
    [
        (np.zeros((2, 3072), np.float32), r"uint8.*float32"),
        (np.zeros((2, 3071), np.uint8), r"\(N, 3072\) or \(N, 3, 32, 32\).*\(2, 3071\)"),
        (np.zeros(3072 * 2, np.uint8), r"\(N, 3072\) or \(N, 3, 32, 32\)"),
        ([[0] * 3072] * 2, "uint8 array"),
        (None, "uint8 array"),
    ],
    ids=["float", "short-rows", "flat", "list", "missing"],
)
def test_cifar_refuses_bad_data_naming_the_file(tmp_path, data, message):
    from minigrad.data.datasets.cifar import load_batch

    path = _cifar_file(tmp_path, {b"data": data, b"labels": [0, 1]})
    with pytest.raises(ValueError, match=message) as error:
        load_batch(path)
    assert str(path) in str(error.value)


def test_cifar_accepts_images_already_shaped_n_3_32_32_and_array_labels(tmp_path):
    from minigrad.data.datasets.cifar import load_batch

    data = np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3, 32, 32)
    for protocol in (2, 5):
        path = _cifar_file(tmp_path, {b"data": data, b"labels": np.array([9, 0], np.int64)}, protocol)
        images, labels = load_batch(path)
        np.testing.assert_array_equal(images, data)
        assert labels.dtype == np.int64 and labels.tolist() == [9, 0]


def test_cifar_keys_that_are_not_utf8_are_not_a_crash(tmp_path):
    from minigrad.data.datasets.cifar import load_batch

    path = _cifar_file(tmp_path, {b"\xff": 1, b"data": np.zeros((1, 3072), np.uint8), b"labels": [3]})
    assert load_batch(path)[1].tolist() == [3]
