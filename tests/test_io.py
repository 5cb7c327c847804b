"""Model files: safetensors round trip, byte layout, atomic writes, corrupted-file errors,
and interop with files written by the reference ``safetensors`` package."""

import json
import os
import struct

import numpy as np
import pytest

import minigrad as mg
import minigrad.io as mgio
from minigrad import nn


def write_raw(path, header: dict, data: bytes, pad: bytes = b""):
    text = json.dumps(header).encode() + pad
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


def test_round_trip_every_dtype_and_metadata(tmp_path):
    state = {
        "w": mg.randn(3, 4),
        "d": np.arange(6, dtype=np.float64).reshape(2, 3),
        "step": np.array(7, dtype=np.int64),
        "i32": np.array([-1, 2], dtype=np.int32),
        "bytes": np.array([0, 255], dtype=np.uint8),
        "mask": np.array([True, False]),
        "empty": np.zeros((0, 3), np.float32),
    }
    path = tmp_path / "state.safetensors"
    mg.save(state, path, metadata={"epoch": "3"})
    loaded = mg.load(path)
    assert set(loaded) == set(state)
    for name, value in state.items():
        expected = np.asarray(getattr(value, "data", value))
        assert loaded[name].dtype == expected.dtype and loaded[name].shape == expected.shape, name
        np.testing.assert_array_equal(loaded[name].numpy(), expected)
    assert mgio.load_metadata(path) == {"epoch": "3"}


def test_byte_layout_follows_the_format(tmp_path):
    path = tmp_path / "a.safetensors"
    mg.save({"b": np.array([1, 2], np.int32), "a": np.array([1.5], np.float64)}, path)
    blob = path.read_bytes()
    size = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8 : 8 + size])
    assert size % 8 == 0  # data region starts aligned
    assert header == {
        "a": {"dtype": "F64", "shape": [1], "data_offsets": [0, 8]},
        "b": {"dtype": "I32", "shape": [2], "data_offsets": [8, 16]},
    }
    assert blob[8 + size :] == struct.pack("<d", 1.5) + struct.pack("<ii", 1, 2)


def test_model_checkpoint_round_trip_gives_the_same_outputs(tmp_path):
    model = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 2))
    mg.save(model.state_dict(), tmp_path / "m.safetensors")
    fresh = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 2))
    fresh.load_state_dict(mg.load(tmp_path / "m.safetensors"))
    x = mg.randn(4, 5)
    np.testing.assert_array_equal(fresh(x).numpy(), model(x).numpy())


def test_crash_mid_write_leaves_the_old_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.safetensors"
    mg.save({"w": np.ones(1000, np.float32)}, path)
    old = path.read_bytes()
    calls = []

    def dying(array):  # the second tensor's bytes never arrive: the "process" dies mid-write
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt("simulated crash")
        return memoryview(array.reshape(-1).view(np.uint8))

    monkeypatch.setattr(mgio, "_tensor_bytes", dying)
    with pytest.raises(KeyboardInterrupt):
        mg.save({"w": np.zeros(1000, np.float32), "v": np.zeros(1000, np.float32)}, path)
    assert path.read_bytes() == old
    assert os.listdir(tmp_path) == ["ckpt.safetensors"]  # no temporary file left behind
    monkeypatch.undo()

    def failing_replace(src, dst):
        raise OSError("disk gone")

    monkeypatch.setattr(mgio.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk gone"):
        mg.save({"w": np.zeros(5, np.float32)}, path)
    assert path.read_bytes() == old and os.listdir(tmp_path) == ["ckpt.safetensors"]


def test_truncated_and_corrupted_files_raise_clear_errors(tmp_path):
    good = tmp_path / "good.safetensors"
    mg.save({"w": np.arange(12, dtype=np.float32)}, good)
    blob = good.read_bytes()
    cases = {
        "tiny": (blob[:5], "shorter than the 8-byte header length"),
        "cut-header": (blob[:20], "truncated: header says"),
        "cut-data": (blob[:-4], "truncated: the header describes 48 data bytes, the file holds 44"),
        "extra-data": (blob + b"\0" * 4, "4 bytes of data are not described"),
        "huge-length": (struct.pack("<Q", 2**40) + blob[8:], "exceeds the 100 MiB limit"),
        "garbage": (blob[:8] + b"\xff" * (len(blob) - 8), "corrupted JSON header"),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / f"{name}.safetensors"
        path.write_bytes(content)
        with pytest.raises(ValueError, match=message):
            mg.load(path)


@pytest.mark.parametrize(
    "header,message",
    [
        ({"w": {"dtype": "F64", "shape": [3], "data_offsets": [0, 12]}}, "needs 24 bytes but its data_offsets"),
        ({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 12]}}, "needs 16 bytes"),
        ({"w": {"dtype": "Q8", "shape": [3], "data_offsets": [0, 12]}}, "unsupported dtype 'Q8'"),
        ({"w": {"dtype": "BF16", "shape": [7], "data_offsets": [0, 12]}}, "needs 14 bytes"),
        ({"w": {"dtype": "F32", "shape": [-3], "data_offsets": [0, 12]}}, "invalid shape"),
        ({"w": {"dtype": "F32", "shape": [3], "data_offsets": [12, 0]}}, "invalid data_offsets"),
        ({"w": {"dtype": "F32", "shape": [3]}}, "exactly the fields"),
        (
            {
                "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]},
            },
            "gap or overlap",
        ),
        ({"__metadata__": {"n": 3}}, "__metadata__ must map strings to strings"),
    ],
    ids=[
        "f64-labelled",
        "wrong-shape",
        "unknown-dtype",
        "bf16",
        "negative-shape",
        "reversed-offsets",
        "missing-field",
        "overlap",
        "bad-metadata",
    ],
)
def test_mislabelled_headers_raise_clear_errors(tmp_path, header, message):
    path = tmp_path / "bad.safetensors"
    write_raw(path, header, np.arange(3, dtype=np.float32).tobytes())
    with pytest.raises(ValueError, match=message):
        mg.load(path)


def test_reads_a_file_built_from_the_specification(tmp_path):
    """Written byte by byte here (independent of our writer): float16 is widened to float32."""
    path = tmp_path / "spec.safetensors"
    data = np.array([1.0, -2.5], "<f2").tobytes() + np.array([[7, 8]], "<i8").tobytes()
    write_raw(
        path,
        {
            "__metadata__": {"format": "pt"},
            "half": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]},
            "long": {"dtype": "I64", "shape": [1, 2], "data_offsets": [4, 20]},
        },
        data,
        pad=b"   ",
    )
    loaded = mg.load(path)
    assert loaded["half"].dtype == np.float32 and loaded["half"].tolist() == [1.0, -2.5]
    assert loaded["long"].dtype == np.int64 and loaded["long"].tolist() == [[7, 8]]


def test_save_rejects_what_it_cannot_store(tmp_path):
    with pytest.raises(TypeError, match="complex128"):
        mg.save({"z": np.zeros(2, np.complex128)}, tmp_path / "z.safetensors")
    with pytest.raises(ValueError, match="non-empty strings"):
        mg.save({"": np.zeros(2)}, tmp_path / "z.safetensors")


def test_files_interoperate_with_the_safetensors_package(tmp_path):
    st_numpy = pytest.importorskip(
        "safetensors.numpy", reason="interop check needs the safetensors package (pip install safetensors)"
    )
    ours = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "n": np.array(4, np.int64)}
    mg.save(ours, tmp_path / "ours.safetensors")
    theirs = st_numpy.load_file(str(tmp_path / "ours.safetensors"))
    for name in ours:
        np.testing.assert_array_equal(theirs[name], ours[name])
    st_numpy.save_file(ours, str(tmp_path / "theirs.safetensors"))
    loaded = mg.load(tmp_path / "theirs.safetensors")
    for name in ours:
        np.testing.assert_array_equal(loaded[name].numpy(), ours[name])


def test_saved_files_get_ordinary_permissions_and_keep_existing_ones(tmp_path):
    import os
    import stat

    path = tmp_path / "w.safetensors"
    mg.save({"w": mg.ones(2)}, path)
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask
    os.chmod(path, 0o640)
    mg.save({"w": mg.zeros(2)}, path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640


@pytest.mark.parametrize(
    "header,message",
    [
        ({"w": {"dtype": "F32", "shape": [2**70], "data_offsets": [0, 12]}}, "too large for any array"),
        ({"w": {"dtype": "F32", "shape": [2**32, 2**32], "data_offsets": [0, 0]}}, "too large for any array"),
        ({"w": {"dtype": "F32", "shape": [0, 2**40, 2**40], "data_offsets": [0, 0]}}, "too large for any array"),
        ({"w": {"dtype": ["F32"], "shape": [3], "data_offsets": [0, 12]}}, r"unsupported dtype \['F32'\]"),
        ({"w": {"dtype": {"F32": 1}, "shape": [3], "data_offsets": [0, 12]}}, "unsupported dtype"),
        ({"w": {"dtype": "F32", "shape": [1] * 65 + [3], "data_offsets": [0, 12]}}, "66 dimensions"),
        ({"w": {"dtype": "F32", "shape": [2**64] * 100_000, "data_offsets": [0, 12]}}, "100000 dimensions"),
        ({"w": {"dtype": "F32", "shape": [3.0], "data_offsets": [0, 12]}}, "invalid shape"),
        ({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 12.0]}}, "invalid data_offsets"),
        ({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 2**80]}}, "needs 12 bytes"),
        ({"w": {"dtype": "F32", "shape": [3], "data_offsets": [2**80, 2**80 + 12]}}, "starts at byte"),
        ({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 12]}, "__metadata__": [[[[]]]]}, "__metadata__ must"),
    ],
    ids=[
        "overflowing-shape",
        "shape-wrapping-int64",
        "empty-but-too-large",
        "list-dtype",
        "dict-dtype",
        "65-dimensions",
        "100000-huge-dimensions",
        "float-shape",
        "float-offset",
        "huge-end",
        "huge-begin",
        "metadata-list",
    ],
)
def test_absurd_headers_are_corrupt_file_errors(tmp_path, header, message):
    path = tmp_path / "bad.safetensors"
    write_raw(path, header, np.arange(3, dtype=np.float32).tobytes())
    with pytest.raises(mgio.CorruptFileError, match=message) as error:
        mg.load(path)
    assert str(error.value).startswith(f"{path}: not a valid safetensors file: ")


def test_deeply_nested_json_header_is_a_corrupt_file_error(tmp_path):
    path = tmp_path / "deep.safetensors"
    text = b'{"__metadata__": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    path.write_bytes(struct.pack("<Q", len(text)) + text)
    for reader in (mg.load, mgio.load_metadata):
        with pytest.raises(mgio.CorruptFileError, match="nested too deeply"):
            reader(path)


def test_corrupt_file_error_is_a_value_error_that_pickles():
    import pickle

    error = mgio.CorruptFileError("/x/model.safetensors", "truncated")
    assert isinstance(error, ValueError) and str(error) == "/x/model.safetensors: truncated"
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is mgio.CorruptFileError and str(again) == str(error) and again.problem == "truncated"


# ---- temporaries of killed writers: removed by the next save of the same target, and only those

_SLOW_WRITER = """
import os, sys, time
from minigrad.io import write_atomically

def chunks():
    yield b"x" * (4 << 20)                  # 4 MB already in the temporary file
    print("WRITING", flush=True)
    while not os.path.exists(sys.argv[2]):  # until the parent says go (or kills us)
        time.sleep(0.02)
    yield b"y"

write_atomically(sys.argv[1], chunks())
print("DONE", flush=True)
"""


def _start_slow_writer(target, go):
    from isolated import start_python

    child = start_python("-c", _SLOW_WRITER, str(target), str(go))
    line = child.stdout.readline()
    assert line == b"WRITING\n", line + child.stdout.read()
    return child


def _temporaries(directory):
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_temporaries_of_killed_writers_are_removed_by_the_next_save(tmp_path):
    import signal

    target = tmp_path / "model.safetensors"
    for _ in range(3):  # each new writer removes the one its killed predecessor left: they never pile up
        child = _start_slow_writer(target, tmp_path / "never")
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
        child.stdout.close()
        [left] = _temporaries(tmp_path)
        assert (tmp_path / left).stat().st_size == 4 << 20
    (tmp_path / ".other.safetensors.99999999.abcdefgh.tmp").write_bytes(b"another target's")
    mg.save({"w": np.ones(3, np.float32)}, target)
    assert _temporaries(tmp_path) == [".other.safetensors.99999999.abcdefgh.tmp"]
    assert mg.load(target)["w"].tolist() == [1, 1, 1]


def test_a_live_writers_temporary_is_never_removed(tmp_path):
    target = tmp_path / "model.safetensors"
    child = _start_slow_writer(target, tmp_path / "go")
    try:
        [live] = _temporaries(tmp_path)
        mg.save({"w": np.zeros(2, np.float32)}, target)  # a concurrent save of the same target
        assert _temporaries(tmp_path) == [live]
        (tmp_path / "go").touch()
        assert child.wait(timeout=30) == 0 and child.stdout.read() == b"DONE\n"
    finally:
        child.kill()
        child.stdout.close()
    assert target.read_bytes() == b"x" * (4 << 20) + b"y"  # the live writer's save completed
    assert _temporaries(tmp_path) == []


def test_only_our_temporaries_of_dead_unlocked_writers_are_removed(tmp_path):
    import fcntl
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)  # exited: no process has this pid (until it is reused, then it is kept)
    names = {
        f".m.st.{dead_pid}.abcdefgh.tmp": False,  # ours, writer gone: removed
        f".m.st.{os.getpid()}.abcdefgh.tmp": True,  # ours, writer (this process) alive
        f".m.st.{dead_pid}.locked01.tmp": True,  # pid looks dead (other pid namespace?) but locked
        ".m.st.abcdefgh.tmp": True,  # no pid: not our naming
        f".m.st.x.{dead_pid}.abcdefgh.tmp": True,  # the temporary of target "m.st.x"
        f"m.st.{dead_pid}.abcdefgh.tmp": True,  # not hidden
        f".m.st.{dead_pid}.abcdefgh.tmp.keep": True,
    }
    for name in names:
        (tmp_path / name).write_bytes(b"t")
    os.symlink(tmp_path / "m.st", tmp_path / f".m.st.{dead_pid}.symlink1.tmp")  # never followed nor removed
    names[f".m.st.{dead_pid}.symlink1.tmp"] = True
    with open(tmp_path / f".m.st.{dead_pid}.locked01.tmp", "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        mg.save({"w": np.zeros(1, np.float32)}, tmp_path / "m.st")
    for name, kept in names.items():
        assert os.path.lexists(tmp_path / name) == kept, name


def test_reads_bfloat16_written_from_the_specification(tmp_path, monkeypatch):
    """BF16 is the top half of a float32: 0x3F80 is 1.0, 0xC020 is -2.5, 0x4049 is 3.140625.
    With ml_dtypes the tensor stays bfloat16; without it, it becomes the same float32 values."""
    path = tmp_path / "bf16.safetensors"
    write_raw(
        path,
        {"w": {"dtype": "BF16", "shape": [3], "data_offsets": [0, 6]}},
        np.array([0x3F80, 0xC020, 0x4049], "<u2").tobytes(),
    )
    expected = [1.0, -2.5, 3.140625]
    loaded = mg.load(path)["w"]
    if mg.bfloat16 is not None:
        assert loaded.dtype == np.dtype(mg.bfloat16)
    np.testing.assert_array_equal(loaded.numpy().astype(np.float32), expected)
    monkeypatch.setattr(mg.io, "bfloat16_type", lambda: None)  # as without ml_dtypes
    widened = mg.load(path)["w"]
    assert widened.dtype == np.float32
    np.testing.assert_array_equal(widened.numpy(), expected)
