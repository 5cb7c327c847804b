"""Atomic file replacement for the text and image files training writes (CSV logs, plots).

Model files go through :func:`minigrad.save`, which is atomic itself; this covers the rest.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_write(path, mode: str = "w", **open_options):
    """Yields a file in ``path``'s directory; on success it is flushed, fsynced and renamed
    over ``path``, so readers see the old file or the complete new one, never a half-written
    one. On an exception the temporary file is removed and ``path`` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, mode, **open_options) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
