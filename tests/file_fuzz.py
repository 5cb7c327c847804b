"""Fuzzing of minigrad's file readers with hypothesis: a valid small file of each kind, mutated
(truncated, bytes flipped, inserted, deleted, junk appended) or built from hostile parts (huge
header lengths and sizes, deeply nested JSON, absurd shapes/offsets/dtypes, gzip bombs, pickles
that reach numpy's array machinery). Each reader must return a valid result or raise a
ValueError whose message names the file: never another exception, never a crash.

Run by test_file_fuzz.py in a child process (``python -c "import file_fuzz; file_fuzz.main('idx')"``),
so a reader that segfaults fails a test instead of killing pytest. Every run is the same
(derandomize=True); each fuzzer prints how often each kind of input ended in which outcome.
"""

from __future__ import annotations

import collections
import gzip
import json
import math
import os
import pickle
import resource
import struct
import sys
import tempfile

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import minigrad as mg
from minigrad.data import read_idx
from minigrad.data.datasets.cifar import load_batch
from minigrad.data.datasets.mnist import MAX_IDX_BYTES
from minigrad.io import load_metadata
from minigrad.train.checkpoint import FORMAT, load_checkpoint

EXAMPLES = int(os.environ.get("MINIGRAD_FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=list(HealthCheck),
)
OUTCOMES: collections.Counter = collections.Counter()
WORK = tempfile.mkdtemp(prefix="minigrad-fuzz-")


# ---- mutations of a valid file ------------------------------------------------------------


def _xor(blob: bytes, flips) -> bytes:
    out = bytearray(blob)
    for index, mask in flips:
        out[index % len(out)] ^= mask
    return bytes(out)


def mutated(valid: bytes, snippets=()):
    """(kind, bytes): ``valid`` damaged one of several ways; positions favour the header."""
    n = len(valid)
    position = st.one_of(st.integers(0, min(n, 64)), st.integers(0, n))
    kinds = [
        st.integers(0, n - 1).map(lambda k: ("truncate", valid[:k])),
        st.lists(st.tuples(position, st.integers(1, 255)), min_size=1, max_size=8).map(
            lambda flips: ("flip", _xor(valid, flips))
        ),
        st.tuples(position, st.binary(min_size=1, max_size=32)).map(
            lambda a: ("insert", valid[: a[0]] + a[1] + valid[a[0] :])
        ),
        st.tuples(position, st.integers(1, 64)).map(lambda a: ("delete", valid[: a[0]] + valid[a[0] + a[1] :])),
        st.binary(min_size=1, max_size=64).map(lambda junk: ("append", valid + junk)),
        st.binary(max_size=256).map(lambda junk: ("random", junk)),
    ]
    if snippets:
        kinds.append(
            st.tuples(position, st.sampled_from(snippets)).map(
                lambda a: ("splice", valid[: a[0]] + a[1] + valid[a[0] :])
            )
        )
    return st.one_of(kinds)


HOSTILE_NUMBERS = st.one_of(
    st.sampled_from([-1, 0, 1, 2**31, 2**32 - 1, 2**32, 2**63 - 1, 2**63, 2**64, 2**70, 10**30]),
    st.integers(-(2**70), 2**70),
)
HOSTILE_JSON = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        HOSTILE_NUMBERS,
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=6),
        st.sampled_from(["F32", "U8", "BF16", "__array__", "__items__", "__tuple__", FORMAT]),
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)),
    max_leaves=12,
)


def deeply_nested(depth: int, open_: bytes = b"[", close: bytes = b"]") -> bytes:
    return open_ * depth + close * depth


# ---- the check every reader's outcome goes through ----------------------------------------


def check(kind: str, content: bytes, name: str, read, validate):
    path = os.path.join(WORK, name)
    with open(path, "wb") as f:
        f.write(content)
    try:
        result = read(path)
    except ValueError as error:
        assert path in str(error), f"{kind}: {type(error).__name__} does not name the file: {error}"
        OUTCOMES[(kind, type(error).__name__)] += 1
        return
    validate(result)
    OUTCOMES[(kind, "loaded")] += 1


# ---- safetensors ---------------------------------------------------------------------------


def _valid_safetensors() -> bytes:
    path = os.path.join(WORK, "valid.safetensors")
    mg.save(
        {
            "w": np.arange(6, dtype=np.float32).reshape(2, 3),
            "b": np.array([1, -2], np.int64),
            "h": np.ones(3, np.float16),
        },
        path,
        metadata={"k": "v"},
    )
    with open(path, "rb") as f:
        return f.read()


def _safetensors_from_header(header, data: bytes) -> bytes:
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


ENTRY = st.fixed_dictionaries(
    {
        "dtype": st.one_of(
            st.sampled_from(["F64", "F32", "F16", "I64", "I8", "U8", "BOOL", "BF16", "Q8", ""]), HOSTILE_JSON
        ),
        "shape": st.one_of(st.lists(st.one_of(st.integers(0, 4), HOSTILE_NUMBERS), max_size=70), HOSTILE_JSON),
        "data_offsets": st.one_of(
            st.lists(st.one_of(st.integers(0, 48), HOSTILE_NUMBERS), min_size=2, max_size=2), HOSTILE_JSON
        ),
    }
)


def safetensors_inputs(valid: bytes):
    return st.one_of(
        mutated(valid),
        st.tuples(st.dictionaries(st.text(max_size=4), ENTRY, max_size=3), st.binary(max_size=48)).map(
            lambda a: ("absurd-header", _safetensors_from_header(a[0], a[1]))
        ),
        st.tuples(st.dictionaries(st.text(max_size=4), HOSTILE_JSON, max_size=3), st.binary(max_size=16)).map(
            lambda a: ("hostile-json", _safetensors_from_header(a[0], a[1]))
        ),
        st.integers(1, 200_000).map(
            lambda depth: (
                "deep-json",
                _safetensors_from_header(b'{"__metadata__": ' + deeply_nested(depth) + b"}", b""),
            )
        ),
        st.tuples(st.integers(0, 2**64 - 1), st.binary(max_size=64)).map(
            lambda a: ("header-length", struct.pack("<Q", a[0]) + valid[8:] + a[1])
        ),
    )


def _validate_safetensors(state):
    assert isinstance(state, dict) and all(isinstance(v, mg.Tensor) for v in state.values())


def fuzz_safetensors():
    @FUZZ
    @given(safetensors_inputs(_valid_safetensors()))
    def run(case):
        kind, content = case
        check(kind, content, "f.safetensors", mg.load, _validate_safetensors)
        check(kind + "/metadata", content, "f.safetensors", load_metadata, lambda m: isinstance(m, dict))

    run()


# ---- checkpoints ---------------------------------------------------------------------------


def _valid_checkpoint() -> bytes:
    from minigrad import nn
    from minigrad.train import save_checkpoint

    path = os.path.join(WORK, "valid-checkpoint.safetensors")
    save_checkpoint(path, nn.Linear(3, 2), epoch=2, extra={"k": (1, 2)})
    with open(path, "rb") as f:
        return f.read()


def _checkpoint_with_structure(text: bytes) -> bytes:
    path = os.path.join(WORK, "structure.safetensors")
    mg.save({"checkpoint.json": np.frombuffer(text, np.uint8).copy(), "w": np.zeros(2, np.float32)}, path)
    with open(path, "rb") as f:
        return f.read()


def _structure(value) -> bytes:
    if isinstance(value, dict) and value.get("format", FORMAT) == FORMAT:
        value = {"format": FORMAT, **value}
    return json.dumps(value).encode()


def checkpoint_inputs(valid: bytes):
    return st.one_of(
        mutated(valid),
        HOSTILE_JSON.map(lambda value: ("hostile-structure", _checkpoint_with_structure(_structure(value)))),
        st.fixed_dictionaries(
            {
                "epoch": HOSTILE_JSON,
                "rng_state": HOSTILE_JSON,
                "model": st.one_of(HOSTILE_JSON, st.just({"w": {"__array__": "w"}})),
            }
        ).map(lambda value: ("hostile-fields", _checkpoint_with_structure(_structure(value)))),
        st.tuples(st.integers(1, 100_000), st.sampled_from([(b"[", b"]"), (b'{"a": ', b"}")])).map(
            lambda a: (
                "deep-structure",
                _checkpoint_with_structure(
                    b'{"format": "%s", "model": ' % FORMAT.encode()
                    + a[1][0] * a[0]
                    + b"1" * (a[1][0] != b"[")
                    + a[1][1] * a[0]
                    + b"}"
                ),
            )
        ),
        st.binary(max_size=64).map(lambda junk: ("structure-bytes", _checkpoint_with_structure(junk))),
    )


def _validate_checkpoint(state):
    assert isinstance(state, dict) and isinstance(state["model"], dict) and isinstance(state["epoch"], int)


def fuzz_checkpoint():
    @FUZZ
    @given(checkpoint_inputs(_valid_checkpoint()))
    def run(case):
        kind, content = case
        check(kind, content, "c.safetensors", load_checkpoint, _validate_checkpoint)

    run()


# ---- IDX, plain and gzip -------------------------------------------------------------------


def _idx(array: np.ndarray, code: int) -> bytes:
    return (
        bytes([0, 0, code, array.ndim])
        + struct.pack(f">{array.ndim}I", *array.shape)
        + array.astype(array.dtype.newbyteorder(">")).tobytes()
    )


VALID_IDX = _idx(np.arange(60, dtype=np.uint8).reshape(3, 4, 5), 0x08)
_ITEMSIZE = {0x08: 1, 0x09: 1, 0x0B: 2, 0x0C: 4, 0x0D: 4, 0x0E: 8}


def _idx_from_parts(code: int, ndim: int, sizes: list, data: bytes, exact: bool) -> bytes:
    """A header with type ``code``, ``ndim`` (not necessarily len(sizes)) and ``sizes``; with
    ``exact``, the data is the size the header declares when that is small."""
    if exact and code in _ITEMSIZE and math.prod(sizes) * _ITEMSIZE[code] <= 4096:
        data = bytes(math.prod(sizes) * _ITEMSIZE[code])
    return bytes([0, 0, code, ndim]) + struct.pack(f">{len(sizes)}I", *sizes) + data


SIZES = st.one_of(st.just(1), st.integers(0, 6), st.integers(0, 2**32 - 1))
IDX_HEADERS = st.one_of(
    st.tuples(
        st.sampled_from([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x00, 0x07, 0xFF]),
        st.integers(0, 255),
        st.lists(SIZES, max_size=8),
        st.binary(max_size=256),
        st.booleans(),
    ),
    st.integers(0, 70).flatmap(
        lambda ndim: st.tuples(  # as many sizes as dimensions, up to 70 of them
            st.sampled_from([0x08, 0x0B, 0x0E]),
            st.just(ndim),
            st.lists(SIZES, min_size=ndim, max_size=ndim),
            st.binary(max_size=64),
            st.booleans(),
        )
    ),
).map(lambda a: ("absurd-header", _idx_from_parts(*a)))


def idx_inputs():
    return st.one_of(mutated(VALID_IDX), IDX_HEADERS)


MEGABYTE_OF_ZEROS = gzip.compress(bytes(1 << 20))  # ~1 KB; gzip members concatenate


def _bomb(declared: int, megabytes: int) -> tuple:
    """An IDX header declaring ``declared`` bytes, then ``megabytes`` MB of zeros. A declared size
    between 1 MB and the reader's limit is a real (large) file: it gets at most 8 MB."""
    if 1 << 20 < declared <= MAX_IDX_BYTES:
        megabytes = min(megabytes, 8)
    return ("bomb", gzip.compress(bytes([0, 0, 8, 1]) + struct.pack(">I", declared)) + MEGABYTE_OF_ZEROS * megabytes)


def gzip_idx_inputs():
    valid = gzip.compress(VALID_IDX)
    return st.one_of(
        mutated(valid),  # damaged gzip stream
        idx_inputs().map(lambda c: ("gzip-of-" + c[0], gzip.compress(c[1]))),  # damaged IDX inside intact gzip
        st.tuples(
            st.one_of(st.integers(0, 1 << 20), st.integers(0, 2**32 - 1)),  # 1.5 GB outgrows the
            st.sampled_from([1, 8, 1536]),
        ).map(lambda a: _bomb(*a)),  # child's 1 GB limit
    )


def _validate_idx(array):
    assert isinstance(array, np.ndarray) and array.dtype.isnative


def fuzz_idx():
    @FUZZ
    @given(idx_inputs())
    def run(case):
        check(case[0], case[1], "f-idx3-ubyte", read_idx, _validate_idx)

    run()


def fuzz_idx_gzip():
    @FUZZ
    @given(gzip_idx_inputs())
    def run(case):
        check(case[0], case[1], "f-idx3-ubyte.gz", read_idx, _validate_idx)

    run()


# ---- CIFAR pickles -------------------------------------------------------------------------

_RECONSTRUCT = np.zeros(1).__reduce__()[0]
_FROMBUFFER = np.zeros(1).__reduce_ex__(5)[0]


class _Reduce:
    """Pickles as ``function(*args)``, then BUILD with ``state`` when given."""

    def __init__(self, function, args, state=None):
        self.function, self.args, self.state = function, args, state

    def __reduce__(self):
        return (self.function, self.args) if self.state is None else (self.function, self.args, self.state)


DTYPE_CODES = st.sampled_from(
    [
        "u1",
        "b1",
        "i8",
        "f4",
        "f8",
        "f2",
        "O",
        "O8",
        "V8",
        "U2",
        "S4",
        "M8[s]",
        "m8",
        "c16",
        "(2,)u1",
        "u1,u1",
        "<f8",
        ">i4",
    ]
)
DTYPE_STATES = st.one_of(
    st.sampled_from(["<", ">", "|", "=", "x"]).map(lambda order: (3, order, None, None, None, -1, -1, 0)),
    st.tuples(st.integers(0, 255)).map(lambda f: (3, "|", None, ("a",), {"a": (np.dtype("O"), 0)}, 8, 1, f[0])),
    st.tuples(st.integers(0, 255)).map(lambda f: (3, "<", None, None, None, -1, -1, f[0])),
    HOSTILE_JSON,
)
DTYPES = st.one_of(
    DTYPE_CODES.map(np.dtype),
    st.tuples(DTYPE_CODES, DTYPE_STATES).map(lambda a: _Reduce(np.dtype, (a[0], False, True), a[1])),
)
SHAPES = st.one_of(
    st.tuples(st.integers(0, 3)),
    st.tuples(st.integers(0, 2), st.integers(0, 3072)),
    st.lists(HOSTILE_NUMBERS, max_size=3).map(tuple),
    HOSTILE_JSON,
)
HOSTILE_ARRAYS = st.one_of(
    st.tuples(DTYPES, SHAPES, st.binary(max_size=64)).map(
        lambda a: _Reduce(_RECONSTRUCT, (np.ndarray, (0,), b"b"), (1, a[1], a[0], False, a[2]))
    ),
    st.tuples(DTYPES, SHAPES, st.binary(max_size=64)).map(lambda a: _Reduce(_FROMBUFFER, (a[2], a[0], a[1], "C"))),
    st.tuples(DTYPE_CODES, SHAPES, st.binary(max_size=64)).map(lambda a: _Reduce(np.ndarray, (a[1], a[0], a[2]))),
)
LABELS = st.one_of(
    st.lists(st.integers(0, 9), min_size=2, max_size=2),
    st.lists(HOSTILE_NUMBERS, max_size=3),
    st.lists(st.floats(allow_nan=True), max_size=3),
    HOSTILE_JSON,
    HOSTILE_ARRAYS,
    st.sampled_from([np.array([1, 2]), np.array([1.5, 2.0]), np.array([[1, 2]]), np.float64(1.0)]),
)
PICKLE_SNIPPETS = [
    b"cnumpy\ndtype\n",
    b"c_codecs\nencode\n",
    b"cnumpy.core.multiarray\n_reconstruct\n",
    b"cos\nsystem\n",
    b"b",
    b"R",
    b"(",
    b"t",
    b"0",
    b"2",
    b"s",
    b"u",
    b"e",
    b"a",
    b"N",
    b"\x81",
    b"r\xff\xff\xff\x7f",
    b"h\xff",
    b"j\xff\xff\xff\x7f",
    b"X\xff\xff\xff\x7f",
    b"\x8e" + b"\xff" * 8,
    b"\x95" + b"\xff" * 8,
    b"\x94",
    b"\x93",
    b"\x92",
    b".",
]


def _valid_batch(protocol: int) -> bytes:
    data = np.arange(2 * 3072, dtype=np.uint32).astype(np.uint8).reshape(2, 3072)
    return pickle.dumps({b"batch_label": b"x", b"data": data, b"labels": [3, 7]}, protocol=protocol)


def _dump(batch, protocol):
    try:
        return pickle.dumps(batch, protocol=protocol)
    except Exception:  # some hostile parts cannot be pickled at all: an ordinary batch instead
        return _valid_batch(protocol)


def cifar_inputs():
    return st.one_of(
        mutated(_valid_batch(2), PICKLE_SNIPPETS),
        mutated(_valid_batch(5), PICKLE_SNIPPETS),
        st.tuples(
            st.one_of(HOSTILE_ARRAYS, st.just(np.zeros((2, 3072), np.uint8)), HOSTILE_JSON),
            LABELS,
            st.sampled_from([2, 5]),
        ).map(lambda a: ("hostile-parts", _dump({b"data": a[0], b"labels": a[1]}, a[2]))),
    )


def _validate_batch(result):
    images, labels = result
    assert images.dtype == np.uint8 and images.shape[1:] == (3, 32, 32)
    assert labels.dtype == np.int64 and labels.shape == (len(images),) and (labels.min(initial=0) >= 0)
    assert labels.max(initial=0) <= 9


def fuzz_cifar():
    @FUZZ
    @given(cifar_inputs())
    def run(case):
        check(case[0], case[1], "test_batch", load_batch, _validate_batch)

    run()


FUZZERS = {
    "safetensors": fuzz_safetensors,
    "checkpoint": fuzz_checkpoint,
    "idx": fuzz_idx,
    "idx-gzip": fuzz_idx_gzip,
    "cifar": fuzz_cifar,
}


def main(name: str) -> None:
    # A reader that inflates a bomb or trusts a header's size fails with MemoryError here
    # rather than taking the machine's memory.
    limit = 1 << 30
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    FUZZERS[name]()
    for (kind, outcome), count in sorted(OUTCOMES.items()):
        print(f"{name}: {kind:28s} {outcome:20s} {count}")
    print(f"FUZZ OK {name} {sum(OUTCOMES.values())}")
    sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1])
