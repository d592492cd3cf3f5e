"""Helpers for the deb-bootc-compose tests: run the CLI, seed target directories from the test cache.

The compose itself runs cold in every session (a fresh target directory), but the .deb pool and the
private apt lists are kept under ``test_cache/compose`` between runs and hard-linked into each target
directory, so a run downloads only what the mirror changed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
CLI = [str(Path(sys.executable).parent / "deb-bootc-compose")]


@dataclass
class CliRun:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def last_line(self) -> str:
        lines = self.stdout.strip().splitlines()
        return lines[-1] if lines else ""


@dataclass
class SessionCompose:
    target: Path
    topdir: Path
    run: CliRun
    manifest: Path

    @property
    def tree(self) -> Path:
        return self.topdir / "work" / "base" / "amd64" / "tree"


def expected_status() -> str:
    """What a compose of the test manifests ends with: every phase is part of compose, so FINISHED."""
    return "FINISHED"


def run_cli(args: list[str], timeout: float = 3600, env: dict[str, str] | None = None) -> CliRun:
    """Run the CLI; ``env``: variables added to ours (e.g. PYTHONPATH for a plugin installed with --target)."""
    start = time.monotonic()
    done = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, cwd=REPO,
                          env={**os.environ, **env} if env else None)
    return CliRun([*CLI, *args], done.returncode, done.stdout, done.stderr, time.monotonic() - start)


def _link_tree(src: Path, dest: Path) -> None:
    """Hard-link every file of ``src`` into ``dest`` (directories created), skipping existing files."""
    if not src.is_dir():
        return
    for root, _dirs, files in os.walk(src):
        d = dest / os.path.relpath(root, src)
        d.mkdir(parents=True, exist_ok=True)
        for f in files:
            target = d / f
            if not target.exists():
                try:
                    os.link(os.path.join(root, f), target)
                except OSError:
                    pass


def seed_target(cache: Path, target: Path) -> None:
    """Give a fresh target directory the cached pool (never the composes or the OSTree repo)."""
    _link_tree(cache / "pool", target / "pool")


def harvest_target(cache: Path, target: Path) -> None:
    _link_tree(target / "pool", cache / "pool")
