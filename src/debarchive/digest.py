"""Checksums of files, read in chunks (a .deb or a disk image never sits in memory whole).

Code that writes a file as it receives it hashes the chunks on the way instead (an upload, a download):
reading it back would read it twice.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """The SHA-256 of the file at ``path``, in hex."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def hashes_file(path: Path) -> tuple[int, str, str]:
    """(size, md5, sha256) of the file at ``path``: what apt's indices record of a file."""
    md5 = hashlib.md5()
    sha256 = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            md5.update(chunk)
            sha256.update(chunk)
            size += len(chunk)
    return size, md5.hexdigest(), sha256.hexdigest()
