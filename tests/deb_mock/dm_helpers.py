"""Helpers for deb-mock's integration tests (a module with a unique name, importable from tests)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

DEB_MOCK = str(Path(sys.executable).parent / "deb-mock")
HELLO = "http://deb.debian.org/debian/pool/main/h/hello/hello_2.10-3.dsc"


@dataclass
class Run:
    rc: int
    out: str
    resultdir: Path

    @property
    def result(self) -> dict:  # type: ignore[type-arg]
        return json.loads((self.resultdir / "result.json").read_text())  # type: ignore[no-any-return]

    def log(self, name: str) -> str:
        return (self.resultdir / name).read_text()


def deb_contents(deb: Path) -> str:
    return subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True).stdout


def leftover_processes(pattern: str) -> list[str]:
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in ps.splitlines() if pattern in line and "ps -eo" not in line]


def is_root() -> bool:
    return os.geteuid() == 0


def processes_with_env(marker: str) -> list[str]:
    """Processes whose environment carries ``marker`` (set on a deb-mock run the test started)."""
    found = []
    for env in Path("/proc").glob("[0-9]*/environ"):
        try:
            if marker.encode() in env.read_bytes():
                found.append(env.parent.name)
        except OSError:
            continue
    return found


def unheld_lock_files(locks: Path) -> list[Path]:
    """Lock files nobody holds: leftovers (a held lock belongs to a running deb-mock)."""
    import fcntl

    left = []
    for f in locks.glob("*.lock"):
        try:
            fd = os.open(f, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            left.append(f)
        except BlockingIOError:
            pass
        finally:
            os.close(fd)
    return left
