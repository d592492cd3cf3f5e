"""Fixtures shared by every tool's tests.

Expensive things (root caches, built packages, composes) live under a cache directory that survives
between CI runs (``~/.cache/deb-bootc-tests`` or ``$DEB_TEST_CACHE``); every test must also pass
when it starts empty.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

MIRROR = os.environ.get("DEB_TEST_MIRROR", "http://deb.debian.org/debian")
HELLO_DSC = f"{MIRROR}/pool/main/h/hello/hello_2.10-3.dsc"


@pytest.fixture(scope="session")
def test_cache() -> Path:
    root = Path(os.environ.get("DEB_TEST_CACHE", Path.home() / ".cache" / "deb-bootc-tests"))
    root.mkdir(parents=True, exist_ok=True)
    return root


@pytest.fixture(scope="session")
def mirror() -> str:
    return MIRROR


@pytest.fixture()
def host_dir() -> Iterator[Path]:
    """A host directory anyone may read and write, holding a ``marker`` file: the target of escape attacks, so
    that only the sandbox stands between it and ns-root (pytest's own directories are 0700)."""
    d = Path("/var/tmp") / f"escape-target-{uuid.uuid4().hex[:8]}"
    d.mkdir(mode=0o777)
    d.chmod(0o777)
    (d / "marker").write_text("HOST-SECRET-MARKER\n")
    (d / "marker").chmod(0o644)
    yield d
    shutil.rmtree(d)
