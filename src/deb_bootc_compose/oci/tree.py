"""Scan a root filesystem tree in a deterministic order, without ever following a symlink.

The trap this module exists for: ``os.walk`` puts symlinks to directories in ``dirnames`` and does not
descend into them, so a walker that only emits ``filenames`` silently drops ``/lib64`` and breaks every
binary of the image. Here every directory entry is looked at with ``lstat`` and symlinks are symlinks,
whatever they point to.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deb_bootc_compose.oci.errors import OciError
from debsandbox.idmap import IdMap, IdRange


class TreeError(OciError):
    """The tree cannot be turned into an image (missing, unreadable); the message says where."""


@dataclass(frozen=True)
class TreeEntry:
    path: str  # relative, "/"-separated, no leading slash; "" is never an entry
    st: os.stat_result

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.st.st_mode)

    @property
    def is_reg(self) -> bool:
        return stat.S_ISREG(self.st.st_mode)

    @property
    def is_symlink(self) -> bool:
        return stat.S_ISLNK(self.st.st_mode)


def inner_stat(st: os.stat_result, ids: IdMap, where: str) -> os.stat_result:
    """``st`` as the tree's user namespace sees it: host uid ``base + N`` becomes uid N (same for gids)."""
    uid = _inner(st.st_uid, ids.uids, where, "uid")
    gid = _inner(st.st_gid, ids.gids, where, "gid")
    if (uid, gid) == (st.st_uid, st.st_gid):
        return st
    seq: tuple[Any, ...] = tuple(st)  # the 10 positional fields
    extra: dict[str, Any] = {name: getattr(st, name) for name in _STAT_EXTRA}
    return os.stat_result((*seq[:4], uid, gid, *seq[6:]), extra)


_STAT_EXTRA = ("st_atime", "st_mtime", "st_ctime", "st_atime_ns", "st_mtime_ns", "st_ctime_ns", "st_blksize",
               "st_blocks", "st_rdev")


def _inner(value: int, ranges: tuple[IdRange, ...], where: str, what: str) -> int:
    for r in ranges:
        if r.outer <= value < r.outer + r.count:
            return int(r.inner + value - r.outer)
    raise TreeError(
        f"{where} is owned by host {what} {value}, which the user namespace the tree was made in does not map "
        "(was it written outside that namespace?)"
    )


def _sort_key(name: str) -> bytes:
    return os.fsencode(name)


def scan_tree(root: Path, ids: IdMap | None = None) -> dict[str, TreeEntry]:
    """Every entry below ``root`` (not ``root`` itself), parents before children, siblings byte-sorted.

    The resulting order equals sorting by the tuple of path components, so a directory's subtree is
    contiguous. Symlinks (to directories or anything else) are entries and are never descended into.
    With ``ids`` (the tree was made in a user namespace with that map), owners are the namespace's ids.
    """
    if not root.is_dir():
        raise TreeError(f"image tree {root} does not exist or is not a directory")
    entries: dict[str, TreeEntry] = {}

    def walk(abs_dir: str, rel_dir: str) -> None:
        try:
            with os.scandir(abs_dir) as it:
                names = sorted((e.name for e in it), key=_sort_key)
        except OSError as exc:
            raise TreeError(f"cannot list {abs_dir}: {exc.strerror}") from exc
        for name in names:
            rel = f"{rel_dir}/{name}" if rel_dir else name
            abs_path = os.path.join(abs_dir, name)
            try:
                st = os.lstat(abs_path)
            except OSError as exc:
                raise TreeError(f"cannot stat {abs_path}: {exc.strerror}") from exc
            if ids is not None:
                st = inner_stat(st, ids, abs_path)
            entries[rel] = TreeEntry(rel, st)
            if stat.S_ISDIR(st.st_mode):
                walk(abs_path, rel)

    walk(os.fspath(root), "")
    return entries


def parents(path: str) -> list[str]:
    """``a/b/c`` → ``["a", "a/b"]``."""
    parts = path.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def resolve_in_tree(root: Path, rel: str, cache: dict[str, str] | None = None) -> str | None:
    """Resolve every component of ``rel`` but the last through symlinks, inside ``root`` (as a chroot would).

    ``bin/ls`` in a merged-/usr tree becomes ``usr/bin/ls``. Returns None when a component is missing or
    the chain of symlinks loops.
    """
    if "/" not in rel:
        return rel
    parent, _, leaf = rel.rpartition("/")
    if cache is not None and parent in cache:
        resolved_parent = cache[parent]
        return f"{resolved_parent}/{leaf}" if resolved_parent else leaf
    todo = parent.split("/")
    done: list[str] = []
    hops = 0
    while todo:
        part = todo.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if done:
                done.pop()
            continue
        candidate = os.path.join(os.fspath(root), *done, part)
        try:
            st = os.lstat(candidate)
        except OSError:
            return None
        if stat.S_ISLNK(st.st_mode):
            hops += 1
            if hops > 40:
                return None
            target = os.readlink(candidate)
            if target.startswith("/"):
                done = []
            todo = [p for p in target.split("/") if p] + todo
            continue
        done.append(part)
    resolved = "/".join(done)
    if cache is not None:
        cache[parent] = resolved
    return f"{resolved}/{leaf}" if resolved else leaf
