"""One way to run code in a fresh interpreter (for what is fixed at import: the ISA, the
OpenMP thread count, fork): it imports the same minigrad this test process imported.

The child starts in the folder that holds that minigrad package (site-packages for an installed
wheel, the repository root for an in-place build), so `python -c` cannot pick up the source
tree's un-built `minigrad/` instead."""

from __future__ import annotations

import os
import subprocess
import sys

import minigrad

PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(minigrad.__file__)))
TESTS = os.path.dirname(os.path.abspath(__file__))


def child_environment(**env: str) -> dict:
    """This process's environment plus ``env``, with the imported minigrad's folder and the
    tests folders first on the import path."""
    path = [PACKAGE_ROOT, TESTS, os.path.join(TESTS, "kernels"), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in path if p), **env}


def start_python(*args: str, **env: str) -> subprocess.Popen:
    """``python args`` running in the background (stdout and stderr together, as bytes)."""
    return subprocess.Popen(
        [sys.executable, *args],
        env=child_environment(**env),
        cwd=PACKAGE_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def run_python(
    code: str, *args: str, timeout: float = 120, module: bool = False, **env: str
) -> subprocess.CompletedProcess:
    """``python -c code args`` (or ``python -m code args`` with ``module=True``) with extra
    environment variables; the tests folders are importable."""
    command = [sys.executable, "-m" if module else "-c", code, *args]
    return subprocess.run(
        command, env=child_environment(**env), cwd=PACKAGE_ROOT, capture_output=True, text=True, timeout=timeout
    )
