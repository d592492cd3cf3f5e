"""Checksums of files, read in chunks (a .deb or a disk image never sits in memory whole).

Code that writes a file as it receives it hashes the chunks on the way instead (an upload, a download):
reading it back would read it twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

CHUNK = 1 << 20


def file_digests(path: Path, algorithms: Sequence[str]) -> tuple[int, dict[str, str]]:
    """(size, {algorithm: hex digest}) of the file at ``path``, read once; names as :mod:`hashlib` has them."""
    hashes = {name: hashlib.new(name) for name in algorithms}
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            for h in hashes.values():
                h.update(chunk)
            size += len(chunk)
    return size, {name: h.hexdigest() for name, h in hashes.items()}


def sha256_file(path: Path) -> str:
    """The SHA-256 of the file at ``path``, in hex."""
    return file_digests(path, ("sha256",))[1]["sha256"]


def hashes_file(path: Path) -> tuple[int, str, str]:
    """(size, md5, sha256) of the file at ``path``: what apt's indices record of a file."""
    size, sums = file_digests(path, ("md5", "sha256"))
    return size, sums["md5"], sums["sha256"]
