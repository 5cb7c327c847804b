"""Fetching dataset files: download to a temporary file, verify the MD5 checksum, rename
(:func:`minigrad.io.write_atomically`).

Nothing here runs unless a dataset is created with ``download=True``. Offline, the error says
which files to put where, so a machine without internet access can still use the readers.
"""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from pathlib import Path

from ...io import write_atomically


def md5sum(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class ChecksumMismatch(ValueError):
    pass


def _verified(response, md5: str, url: str):
    """The response's bytes in blocks; raises after the last one if their MD5 is not ``md5``,
    so :func:`write_atomically` discards the temporary file instead of renaming it."""
    digest = hashlib.md5()
    for block in iter(lambda: response.read(1 << 20), b""):
        digest.update(block)
        yield block
    if digest.hexdigest() != md5:
        raise ChecksumMismatch(f"{url}: checksum {digest.hexdigest()} does not match the expected {md5}")


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
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                write_atomically(target, _verified(response, md5, url))
            return target
        except ChecksumMismatch as error:
            errors.append(str(error))
        except (urllib.error.URLError, OSError, TimeoutError) as error:
            errors.append(f"{url}: {error}")
    raise RuntimeError(
        f"{dataset}: could not download {name} ({'; '.join(errors)}). If this machine is offline, "
        f"download {name} elsewhere (from {mirrors[0]}) and put it into {root.resolve()}, then create "
        f"the dataset again without download=True."
    )
