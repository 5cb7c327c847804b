"""Fuzzing the file readers (safetensors, checkpoints, IDX plain and gzip, CIFAR pickles): each
fuzzer (tests/file_fuzz.py) runs in a child process, so a reader that crashes the interpreter
fails its test here; inside, hypothesis (derandomized, so every run tries the same inputs)
checks every input ends as a valid result or a ValueError naming the file, under a 1 GB
address-space limit that turns a gzip bomb or a trusted header size into a failure."""

import pytest

from isolated import run_python


@pytest.mark.parametrize("reader", ["safetensors", "checkpoint", "idx", "idx-gzip", "cifar"])
def test_reader_survives_fuzzed_files(reader):
    result = run_python("import sys, file_fuzz; file_fuzz.main(sys.argv[1])", reader, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"fuzzer {reader} failed (rc {result.returncode}):\n{output[-6000:]}"
    assert f"FUZZ OK {reader}" in result.stdout, output[-6000:]
