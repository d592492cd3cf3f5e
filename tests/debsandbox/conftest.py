"""Fixtures of the debsandbox tests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


def _minimal_root(root: Path) -> Path:
    """A tiny root with a static busybox-free shell: copy the host's /bin/sh and its libraries."""
    for d in ("bin", "lib", "lib64", "usr/bin", "etc", "proc", "dev", "tmp"):
        (root / d).mkdir(parents=True, exist_ok=True)
    for tool in ("sh", "cat", "id", "ls", "touch", "sleep", "wc"):
        src = shutil.which(tool)
        assert src
        shutil.copy2(src, root / "bin" / tool)
        out = subprocess.run(["ldd", src], capture_output=True, text=True).stdout
        for line in out.splitlines():
            parts = [p for p in line.split() if p.startswith("/")]
            for lib in parts:
                dest = root / lib.lstrip("/")
                dest.parent.mkdir(parents=True, exist_ok=True)
                if not dest.exists():
                    shutil.copy2(lib, dest)
    return root


@pytest.fixture()
def lower(tmp_path: Path) -> Path:
    return _minimal_root(tmp_path / "lower")
