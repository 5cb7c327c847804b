"""minigrad's OpenMP runtime (the system's libgomp in a source build, a vendored copy under a
mangled name in a repaired wheel) and PyTorch's own, in one process: both orders of import, both
running multi-threaded kernels with correct results, and again in a forked child, without a
hang (each case runs in a fresh interpreter under a time limit). In the child PyTorch runs
single-threaded, as PyTorch's own forked workers do: its OpenMP runtime hangs when a forked child
starts threads, with or without minigrad in the process."""

from __future__ import annotations

import importlib.util

import pytest

from isolated import run_python

pytestmark = pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs PyTorch")

SCRIPT = """
import os, signal, sys
import numpy as np
first = sys.argv[1]
if first == "torch":
    import torch
    import minigrad as mg
else:
    import minigrad as mg
    import torch
from minigrad.nn import functional as F

def both_agree(tag):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 16, 24, 24)).astype(np.float32)
    w = rng.standard_normal((32, 16, 3, 3)).astype(np.float32)
    a = rng.standard_normal((256, 384)).astype(np.float32)
    b = rng.standard_normal((384, 192)).astype(np.float32)
    ours = F.conv2d(mg.tensor(x), mg.tensor(w), padding=1).data
    theirs = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), padding=1).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-3, atol=1e-3, err_msg=tag)
    np.testing.assert_allclose((mg.tensor(a) @ mg.tensor(b)).data, (torch.from_numpy(a) @ torch.from_numpy(b)).numpy(),
                               rtol=1e-4, atol=1e-3, err_msg=tag)

mg.set_num_threads(2)
torch.set_num_threads(2)
for _ in range(3):
    both_agree("parent")
pid = os.fork()
if pid == 0:
    try:
        signal.alarm(60)  # a hang ends the child, and the test reports it
        # PyTorch's own OpenMP runtime cannot start threads in a forked child (its workers, such as
        # DataLoader's, run single-threaded, as here); minigrad's kernels notice the fork themselves
        torch.set_num_threads(1)
        both_agree("child")
        os._exit(0)
    except BaseException as error:
        print("child failed:", error, flush=True)
        os._exit(1)
_, status = os.waitpid(pid, 0)
assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
both_agree("parent after fork")
print("ok", first)
"""


@pytest.mark.parametrize("first", ["minigrad", "torch"])
def test_both_runtimes_in_one_process_and_after_fork(first):
    done = run_python(SCRIPT, first, timeout=120)
    assert done.returncode == 0 and f"ok {first}" in done.stdout, done.stdout[-2000:] + done.stderr[-3000:]
