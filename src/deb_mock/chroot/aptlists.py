"""Fresh apt lists for a root cache whose own are stale: fetched once, shared by the builds that follow.

A root cache's apt lists are as old as the root cache. Once they are older than the config's
``apt_lists_max_age_hours``, builds must resolve their build-dependencies against fresh ones. Rather than every
build running ``apt-get update`` (a second or more with the network, on every warm build), the first one makes a
*lists snapshot* next to the root cache generation (``CACHE/root-cache/<config>-<key>/gen-<n>/lists/<ms>/``):
``apt-get update`` as ns-root in a sandbox with network, starting from a copy of the root cache's lists (so only
what changed is fetched), into a directory written under a temporary name and renamed into place when complete.
Builds of the same generation then use the newest snapshot younger than the maximum age, bound read-only over
``/var/lib/apt/lists`` in their apt sandboxes (never in the build's), and their resolutions are memoised again,
keyed by the snapshot. Each build holds a shared lock on the snapshot it uses; older snapshots are removed once
nobody uses them, and all of them go with their generation.

Only ``apt-get update`` writes a snapshot, in a sandbox of its own on the root cache alone; what builds and the
build-dependencies' maintainer scripts run sees it read-only or not at all.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from deb_mock.chroot.paths import CachePaths
from deb_mock.chroot.rootcache import RootCache
from deb_mock.errors import InfraError
from debsandbox.locks import flock, remove_unless_locked
from debsandbox.sandbox import owned_dir, remove_tree

LISTS = "/var/lib/apt/lists"
_NAME = re.compile(r"^\d{13,}$")


@dataclass(frozen=True)
class ListsSnapshot:
    path: Path
    created: float
    lock_name: str

    @property
    def name(self) -> str:
        return self.path.name


def _base(cache: RootCache) -> Path:
    return cache.root.parent / "lists"


def _lock_name(cache: RootCache, name: str) -> str:
    return f"lists-{cache.config}-{cache.key}-{cache.generation}-{name}"


def _snapshots(cache: RootCache) -> list[ListsSnapshot]:
    """The complete snapshots of ``cache``, newest first."""
    base = _base(cache)
    found = [
        ListsSnapshot(d, int(d.name) / 1000, _lock_name(cache, d.name))
        for d in (base.iterdir() if base.is_dir() else [])
        if _NAME.match(d.name) and d.is_dir()
    ]
    return sorted(found, key=lambda s: s.created, reverse=True)


def _newest(cache: RootCache, max_age: float) -> ListsSnapshot | None:
    snaps = _snapshots(cache)
    return snaps[0] if snaps and time.time() - snaps[0].created < max_age else None


def _make(cache: RootCache, refresh: Callable[[Path], None]) -> ListsSnapshot:
    """A new snapshot: ``refresh(directory)`` fills the directory (ns-root's, empty) with fresh lists."""
    base = _base(cache)
    base.mkdir(exist_ok=True)
    name = str(int(time.time() * 1000))
    staging = owned_dir(base / f".{name}.tmp-{os.getpid()}")
    try:
        refresh(staging)
        staging.rename(base / name)
    except BaseException:
        remove_tree(staging)
        raise
    return ListsSnapshot(base / name, int(name) / 1000, _lock_name(cache, name))


def prune(cache: RootCache, paths: CachePaths, keep: ListsSnapshot) -> None:
    """Remove the snapshots other than ``keep`` that no build uses, and refreshes that were killed."""
    base = _base(cache)
    for d in base.iterdir() if base.is_dir() else []:
        if d.name.startswith(".") and ".tmp-" in d.name:
            pid = d.name.rsplit("-", 1)[-1]
            if pid.isdigit() and not Path(f"/proc/{pid}").exists():
                remove_tree(d)
        elif _NAME.match(d.name) and d.name != keep.name and d.name < keep.name:
            remove_unless_locked(d, paths.lock(_lock_name(cache, d.name)))


@contextlib.contextmanager
def fresh(
    cache: RootCache, paths: CachePaths, max_age: float, refresh: Callable[[Path], None]
) -> Iterator[ListsSnapshot]:
    """A snapshot younger than ``max_age`` seconds (made with ``refresh`` if there is none), locked shared
    for the ``with`` block."""
    for _ in range(3):
        snap = _newest(cache, max_age)
        if snap is None:
            with flock(paths.lock(f"lists-{cache.lock_name}")):
                snap = _newest(cache, max_age) or _make(cache, refresh)  # or made while we waited
        with flock(paths.lock(snap.lock_name), shared=True):
            if not snap.path.is_dir():
                continue  # pruned between finding and locking it: a newer one exists
            yield snap
            break
    else:
        raise InfraError(f"apt lists snapshots of {cache.root.parent} keep disappearing")
    prune(cache, paths, snap)
