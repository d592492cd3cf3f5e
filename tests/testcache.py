"""The test cache (``~/.cache/deb-bootc-tests`` or ``$DEB_TEST_CACHE``) is shared by every pytest worker of a
run and by runs after it. Whatever a fixture builds there must be built by one process at a time and appear
whole: build it under :func:`locked` (one lock file per thing) into a temporary name of its own
(:func:`partial_name`), then rename it into place.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from debsandbox.locks import flock


@contextmanager
def locked(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive flock on ``lock_file`` (created if needed): other workers wait here meanwhile."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with flock(lock_file, keep_file=True):
        yield


def partial_name(dest: Path) -> Path:
    """A name next to ``dest`` that no other process uses, for writing it before an atomic rename."""
    return dest.with_name(f".{dest.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.part")
