"""Which dpkg package owns which path of a tree, read from the tree's own dpkg database.

The database is looked for where the bootc-era convention puts it (``usr/lib/sysimage/dpkg``) and, for a
tree whose database has not moved, in ``var/lib/dpkg``. A symlink there (``var/lib/dpkg ->
../../usr/lib/sysimage/dpkg``) is not followed: the real directory wins.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from deb_bootc_compose.intree import Tree
from deb_bootc_compose.oci.tree import TreeEntry, resolve_in_tree

DB_LOCATIONS = ("usr/lib/sysimage/dpkg", "var/lib/dpkg")


@dataclass
class Ownership:
    db_dir: str | None  # relative path of the database directory, None when the tree has none
    packages: list[str] = field(default_factory=list)  # dpkg's names: "bash", "libc6:amd64"
    owners: dict[str, list[str]] = field(default_factory=dict)  # tree path → packages listing it (sorted)

    def owner(self, path: str) -> str | None:
        """The package a path belongs to: its only owner, or the first in sort order when shared."""
        found = self.owners.get(path)
        return found[0] if found else None


def find_dpkg_db(tree: Path) -> str | None:
    """The database directory: a real directory of the tree (resolved inside it, never through a link)."""
    with Tree(tree) as t:
        for rel in DB_LOCATIONS:
            if t.is_real_dir(rel) and t.resolve(rel) == rel and t.is_real_dir(f"{rel}/info"):
                return rel
    return None


def _read_list(path: Path) -> bytes:
    """A .list file of a real database directory; a link or anything but a regular file reads as empty
    (its package then owns nothing: its files go to the shared layers), never followed or opened."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return b""
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            return b""
        return fh.read()


def info_file_package(name: str, known: set[str]) -> str | None:
    """``bash.list`` → ``bash``; ``libc6:amd64.md5sums`` → ``libc6:amd64``; unknown names → None."""
    stem, dot, _ext = name.rpartition(".")
    if dot and stem in known:
        return stem
    return None


def read_ownership(tree: Path, entries: dict[str, TreeEntry]) -> Ownership:
    """Map every path listed in ``info/*.list`` to its packages, canonicalised against ``entries``.

    A listed path that is not an entry as written (``/bin/ls`` in a merged-/usr tree) is resolved through
    the tree's own symlinks (``usr/bin/ls``). Paths that no longer exist (moved by ostree-prepare, removed
    by postprocess scripts) are ignored. The database's ``info/<package>.*`` files belong to their package.
    """
    db = find_dpkg_db(tree)
    result = Ownership(db_dir=db)
    if db is None:
        return result
    info_dir = tree / db / "info"
    list_files = sorted((n for n in os.listdir(info_dir) if n.endswith(".list")), key=os.fsencode)
    packages = [n[: -len(".list")] for n in list_files]
    result.packages = packages
    known = set(packages)
    cache: dict[str, str] = {}
    owners: dict[str, list[str]] = {}
    for pkg, list_name in zip(packages, list_files, strict=True):
        raw = _read_list(info_dir / list_name)
        for line in raw.split(b"\n"):
            listed = os.fsdecode(line).strip("/")
            if not listed or listed == ".":
                continue
            rel = listed if listed in entries else resolve_in_tree(tree, listed, cache)
            if rel is None or rel not in entries:
                continue
            holders = owners.setdefault(rel, [])
            if not holders or holders[-1] != pkg:
                holders.append(pkg)
    prefix = f"{db}/info/"
    for rel in entries:
        if rel.startswith(prefix) and "/" not in rel[len(prefix) :]:
            pkg_name = info_file_package(rel[len(prefix) :], known)
            if pkg_name is not None:
                owners[rel] = [pkg_name]
    for holders in owners.values():
        holders.sort(key=os.fsencode)
    result.owners = owners
    return result
