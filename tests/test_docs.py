"""Every Python code block in README.md and docs/ runs as written, each in a fresh process in
an empty folder (the files a block writes land there). A block preceded by
``<!-- fragment -->`` is deliberately partial and skipped; ``<!-- needs: module -->`` names an
optional package the block needs (skipped without it)."""

from __future__ import annotations

import importlib.util
import json
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


def test_the_internals_page_is_what_its_script_writes(tmp_path):
    """docs/internals.md is generated from a real run by docs/make_internals.py (which also checks
    each gradient on the page against its formula): the script runs, writes the page, the trace
    and the plots, and the page in the repository has the same sections and code as a fresh one."""
    pytest.importorskip("matplotlib")
    done = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "make_internals.py"), "--out", str(tmp_path)],
        env=child_environment(MPLBACKEND="Agg"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    fresh = (tmp_path / "internals.md").read_text()
    kept = (ROOT / "docs" / "internals.md").read_text()

    def skeleton(text):
        return [m.group("code") for m in BLOCK.finditer(text)] + re.findall(r"^#+ .*$", text, re.M)

    assert skeleton(fresh) == skeleton(kept) and len(skeleton(fresh)) >= 8
    trace = json.loads((tmp_path / "images" / "internals-trace.json").read_text())
    assert {e["ph"] for e in trace["traceEvents"]} >= {"X", "C", "M"}
    for picture in ("internals-memory.png", "internals-watch.png"):
        assert (tmp_path / "images" / picture).read_bytes()[:4] == b"\x89PNG"
    assert "[dead_relu] 1" in fresh and "probably wrong" in fresh and "no alerts" in fresh
