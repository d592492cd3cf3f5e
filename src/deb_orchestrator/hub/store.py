"""Content-addressed artifact store: files live at ``objects/ab/cdef…`` named by their SHA-256.

An object is written whole in ``tmp/`` and renamed into place, holding ``.lock`` shared; `deb-orchestrator gc`
(hub/gcstore.py) holds it exclusive while it checks and removes objects, so an object written again while gc
looks at it is seen as new (its mtime) and kept."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from debsandbox.locks import flock


class ChecksumMismatch(ValueError):
    pass


class Store:
    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "objects").mkdir(parents=True, exist_ok=True)
        (root / "tmp").mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a SHA-256: {sha256!r}")
        return self.root / "objects" / sha256[:2] / sha256[2:]

    @contextmanager
    def locked(self, *, shared: bool) -> Iterator[None]:
        """Writers hold it shared while they rename an object into place; gc exclusive while it removes."""
        with flock(self.root / ".lock", shared=shared):
            yield

    def has(self, sha256: str) -> bool:
        return self.path(sha256).exists()

    def put_chunks(self, chunks: Iterable[bytes], expected_sha256: str | None = None) -> tuple[str, int]:
        """Store a stream; verify it against ``expected_sha256`` when given. Returns (sha256, size)."""
        h = hashlib.sha256()
        size = 0
        fd, tmp = tempfile.mkstemp(dir=self.root / "tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                for chunk in chunks:
                    h.update(chunk)
                    size += len(chunk)
                    f.write(chunk)
            digest = h.hexdigest()
            if expected_sha256 is not None and digest != expected_sha256.lower():
                raise ChecksumMismatch(
                    f"upload corrupted: declared sha256 {expected_sha256}, received {digest} ({size} bytes)"
                )
            dest = self.path(digest)
            dest.parent.mkdir(exist_ok=True)
            os.chmod(tmp, 0o644)
            with self.locked(shared=True):
                os.utime(tmp)  # its mtime says when it was (re)written into place: gc keeps new objects
                os.replace(tmp, dest)
            return digest, size
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def put_file(self, path: Path, expected_sha256: str | None = None) -> tuple[str, int]:
        def chunks() -> Iterable[bytes]:
            with path.open("rb") as f:
                while block := f.read(1 << 20):
                    yield block

        return self.put_chunks(chunks(), expected_sha256)
