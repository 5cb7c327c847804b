"""Fetching dataset files: download to a temporary file, verify the MD5 checksum, rename.

Nothing here runs unless a dataset is created with ``download=True``. Offline, the error says
which files to put where, so a machine without internet access can still use the readers.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path


def md5sum(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(name: str, mirrors: list[str], md5: str, root: Path, dataset: str, timeout: float = 30.0) -> Path:
    """Downloads ``name`` from the first mirror that answers into ``root``, checks its MD5 and
    renames it into place atomically. Returns the file's path."""
    root.mkdir(parents=True, exist_ok=True)
    target = root / name
    if target.exists() and md5sum(target) == md5:
        return target
    errors = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + name
        handle, temporary = tempfile.mkstemp(dir=root, prefix=f".{name}.", suffix=".part")
        try:
            with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
                for block in iter(lambda: response.read(1 << 20), b""):
                    out.write(block)
                out.flush()
                os.fsync(out.fileno())
            actual = md5sum(Path(temporary))
            if actual != md5:
                errors.append(f"{url}: checksum {actual} does not match the expected {md5}")
                continue
            os.replace(temporary, target)
            return target
        except (urllib.error.URLError, OSError, TimeoutError) as error:
            errors.append(f"{url}: {error}")
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
    raise RuntimeError(
        f"{dataset}: could not download {name} ({'; '.join(errors)}). If this machine is offline, "
        f"download {name} elsewhere (from {mirrors[0]}) and put it into {root.resolve()}, then create "
        f"the dataset again without download=True.")
