"""gc's second step (hub/gc.py): the artifact store's objects no live build names, and old leftovers in its tmp/.

Objects are looked at under the store's lock held exclusive, a batch at a time: a writer renames an object into
place under the same lock held shared and gives it a new mtime, so an object written again while gc runs (a new
build with the same .orig.tar.gz) is seen as new and kept. Objects still hard-linked into a tag repository's pool
are kept too: removing the store's link would not free their space, and the repository serves them.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from deb_orchestrator.hub.store import Store

BATCH = 256  # objects removed per hold of the store's lock (writers wait at most one batch)
HEX = frozenset("0123456789abcdef")


def _is_hex(text: str, length: int) -> bool:
    return len(text) == length and set(text) <= HEX


def served_inodes(repos: Path) -> set[tuple[int, int]]:
    """(device, inode) of every file in the tag repositories' pools (hard links of store objects)."""
    out: set[tuple[int, int]] = set()
    if not repos.is_dir():
        return out
    for repo in repos.iterdir():
        pool = repo / "pool"
        if repo.is_symlink() or not pool.is_dir() or pool.is_symlink():
            continue
        for root, _dirs, files in os.walk(pool):  # os.walk does not follow links to directories
            for name in files:
                try:
                    st = os.lstat(os.path.join(root, name))
                except FileNotFoundError:  # a publication pruned it meanwhile
                    continue
                if stat.S_ISREG(st.st_mode):
                    out.add((st.st_dev, st.st_ino))
    return out


def _tree_stat(path: Path) -> tuple[float, int]:
    """The newest mtime in a tree (links not followed) and its regular files' bytes."""
    st = path.lstat()
    newest, size = st.st_mtime, st.st_size if stat.S_ISREG(st.st_mode) else 0
    if stat.S_ISDIR(st.st_mode):
        for root, dirs, files in os.walk(path):
            for name in [*dirs, *files]:
                try:
                    sub = os.lstat(os.path.join(root, name))
                except FileNotFoundError:
                    continue
                newest = max(newest, sub.st_mtime)
                size += sub.st_size if stat.S_ISREG(sub.st_mode) else 0
    return newest, size


class StoreSweep:
    def __init__(self, store: Store, live: set[str], *, cutoff: float, tmp_cutoff: float, repos: Path) -> None:
        self.store = store
        self.live = live  # objects the database names (after gc's own changes)
        self.cutoff = cutoff  # objects written since are kept (an upload whose row is not committed yet)
        self.tmp_cutoff = tmp_cutoff
        self.repos = repos

    def _unnamed(self) -> list[tuple[str, Path]]:
        """(sha256, path) of every object no live row names, in the store's order."""
        out = []
        objects = self.store.root / "objects"
        for fan in sorted(objects.iterdir()):
            if not _is_hex(fan.name, 2) or fan.is_symlink() or not fan.is_dir():
                continue
            for entry in sorted(fan.iterdir()):
                sha = fan.name + entry.name
                if _is_hex(entry.name, 62) and sha not in self.live:
                    out.append((sha, entry))
        return out

    def _removable(self, path: Path, served: set[tuple[int, int]]) -> os.stat_result | None:
        try:
            st = path.lstat()
        except FileNotFoundError:
            return None
        if not stat.S_ISREG(st.st_mode) or st.st_mtime >= self.cutoff or (st.st_dev, st.st_ino) in served:
            return None
        return st

    def objects(self, *, remove: bool) -> tuple[list[tuple[str, int]], int]:
        """The objects removed (or, without ``remove``, that would be) with their sizes, and how many
        unnamed objects were kept (too new, or hard-linked into a repository)."""
        served = served_inodes(self.repos)
        unnamed = self._unnamed()
        done: list[tuple[str, int]] = []
        for i in range(0, len(unnamed), BATCH):
            batch = unnamed[i:i + BATCH]
            if not remove:
                done += [(sha, st.st_size) for sha, path in batch if (st := self._removable(path, served))]
                continue
            with self.store.locked(shared=False):
                for sha, path in batch:
                    st = self._removable(path, served)
                    if st is not None:
                        path.unlink()
                        done.append((sha, st.st_size))
        return done, len(unnamed) - len(done)

    def tmp(self, *, remove: bool) -> list[tuple[str, int]]:
        """Entries of store/tmp whose whole tree is older than the tmp retention (uploads and fetches cut short)."""
        out = []
        for entry in sorted((self.store.root / "tmp").iterdir()):
            try:
                newest, size = _tree_stat(entry)
            except FileNotFoundError:
                continue
            if newest >= self.tmp_cutoff:
                continue
            if remove:
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
            out.append((entry.name, size))
        return out
