"""The build-dependency cache: overlay upper directories holding exactly one resolved build-dependency set.

An entry is keyed by the root cache generation it sits on and the exact resolved package versions, so a
hit gives a root identical to a fresh install of those versions. Entries are bounded in total size and
evicted least-recently-used first; an entry in use (shared lock) or kept for ``--shell`` on a failed
build is never evicted.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from deb_mock.chroot.paths import CachePaths
from debsandbox.locks import flock, remove_unless_locked
from debsandbox.sandbox import remove_tree


@dataclass(frozen=True)
class DepsEntry:
    key: str
    path: Path  # the entry directory; the overlay layer is path / "upper"

    @property
    def layer(self) -> Path:
        return self.path / "upper"

    @property
    def lock_name(self) -> str:
        return f"deps-{self.key}"


def key_for(root_ident: str, resolved: list[str]) -> str:
    """``resolved`` are ``name=version:arch`` strings of every package apt installs (order irrelevant)."""
    digest = hashlib.sha256("\n".join([root_ident, *sorted(resolved)]).encode()).hexdigest()
    return digest[:24]


def lookup(paths: CachePaths, key: str) -> DepsEntry | None:
    entry = DepsEntry(key, paths.deps_cache / key)
    if (entry.path / "meta.json").is_file() and entry.layer.is_dir():
        os.utime(entry.path / "meta.json")  # LRU: last used
        return entry
    return None


def _du(path: Path) -> int:
    total = 0
    for dirpath, dirnames, filenames in os.walk(path):
        for name in filenames + dirnames:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
    return total


def store(paths: CachePaths, key: str, upper: Path, resolved: list[str], root_ident: str) -> DepsEntry:
    """Move a finished upper directory into the cache (atomic rename); return the entry."""
    entry = DepsEntry(key, paths.deps_cache / key)
    staging = paths.deps_cache / f".{key}.tmp-{os.getpid()}"
    paths.deps_cache.mkdir(parents=True, exist_ok=True)
    try:
        staging.mkdir()
        upper.rename(staging / "upper")
        meta = {
            "key": key,
            "root": root_ident,
            "packages": sorted(resolved),
            "created": time.time(),
            "size": _du(staging / "upper"),
        }
        (staging / "meta.json").write_text(json.dumps(meta, indent=1))
        staging.rename(entry.path)
    except BaseException:
        remove_tree(staging)
        raise
    return entry


@contextlib.contextmanager
def using(entry: DepsEntry, paths: CachePaths) -> Iterator[DepsEntry]:
    with flock(paths.lock(entry.lock_name), shared=True):
        yield entry


def entries(paths: CachePaths) -> list[tuple[float, int, Path]]:
    """(last used, size in bytes, dir) of every complete entry."""
    out = []
    if paths.deps_cache.is_dir():
        for d in paths.deps_cache.iterdir():
            meta = d / "meta.json"
            if d.name.startswith(".") or not meta.is_file():
                continue
            try:
                size = int(json.loads(meta.read_text()).get("size", 0))
            except ValueError:
                size = 0
            out.append((meta.stat().st_mtime, size, d))
    return sorted(out)


def _referenced_by_failed_roots(paths: CachePaths) -> set[str]:
    refs: set[str] = set()
    for meta in (paths.root / "failed").glob("*/meta.json"):
        with contextlib.suppress(OSError, ValueError):
            refs.update(str(p) for p in json.loads(meta.read_text()).get("lower", []))
    return refs


def evict(paths: CachePaths, max_bytes: int, keep: str | None = None) -> list[str]:
    """Remove least-recently-used entries until the cache fits in ``max_bytes``; return removed keys."""
    items = entries(paths)
    total = sum(size for _, size, _ in items)
    protected = _referenced_by_failed_roots(paths)
    removed = []
    for _, size, d in items:
        if total <= max_bytes:
            break
        if d.name == keep or str(d / "upper") in protected:
            continue
        if not remove_unless_locked(d, paths.lock(f"deps-{d.name}")):
            continue
        total -= size
        removed.append(d.name)
    return removed
