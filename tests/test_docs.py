"""Every Python code block in README.md and docs/ runs as written, each in a fresh process in
an empty folder (the files a block writes land there). A block preceded by
``<!-- fragment -->`` is deliberately partial and skipped; ``<!-- needs: module -->`` names an
optional package the block needs (skipped without it)."""

from __future__ import annotations

import importlib.util
import pathlib
import re
import subprocess
import sys

import pytest

from isolated import child_environment

ROOT = pathlib.Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"(?P<marks>(?:<!--[^\n]*-->\n)*)```python\n(?P<code>.*?)```", re.S)


def blocks():
    found = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        if not path.exists():
            continue
        text = path.read_text()
        for match in BLOCK.finditer(text):
            line = text.count("\n", 0, match.start("code")) + 1
            marks = match.group("marks")
            needs = re.findall(r"<!--\s*needs:\s*([\w.]+)\s*-->", marks)
            found.append(
                pytest.param(
                    match.group("code"),
                    needs,
                    "fragment" in marks,
                    id=f"{path.relative_to(ROOT)}:{line}",
                )
            )
    return found


def test_the_docs_have_code_blocks():
    assert len(blocks()) >= 9  # README.md 3, one per strategy page 6


@pytest.mark.parametrize("code, needs, fragment", blocks())
def test_code_block_runs(code, needs, fragment, tmp_path):
    if fragment:
        pytest.skip("marked as a fragment")
    for module in needs:
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"needs {module}")
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=child_environment(MPLBACKEND="Agg"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
