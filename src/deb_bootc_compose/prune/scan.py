"""Read a target directory for ``prune``: its composes, its ``latest-`` links, what uses its commits."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from deb_bootc_compose import composeid, lockfile
from deb_bootc_compose import metadata as md
from deb_bootc_compose.paths import ComposePaths, TargetPaths
from deb_bootc_compose.publish.usage import published_commits

from .plan import Compose, Status


def composes(target: TargetPaths) -> list[Compose]:
    """Every compose directory of the target (entries whose names are not compose IDs are not composes)."""
    out = []
    for entry in sorted(target.target.iterdir()):
        if entry.is_symlink() or not entry.is_dir():
            continue
        try:
            parts = composeid.parse(entry.name)
        except ValueError:
            continue
        paths = target.compose(entry.name)
        out.append(Compose(
            compose_id=entry.name, name=str(parts["name"]), compose_type=str(parts["type"]), date=str(parts["date"]),
            respin=int(parts["respin"]), status=_status(paths), finished=_finished(paths),
            commits=_commits(paths), debs=_debs(paths),
        ))
    return out


def _status(paths: ComposePaths) -> Status:
    try:
        value = paths.status.read_text(encoding="utf-8", errors="replace").strip()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return Status.MISSING
    return Status(value) if value in Status.__members__ else Status.MISSING


def _finished(paths: ComposePaths) -> dt.datetime:
    where = paths.status if paths.status.is_file() and not paths.status.is_symlink() else paths.topdir
    return dt.datetime.fromtimestamp(where.lstat().st_mtime, dt.UTC)


def _commits(paths: ComposePaths) -> frozenset[str] | None:
    if not paths.ostree_json.exists():
        return frozenset()
    try:
        return frozenset(e.commit for e in md.load_ostree(paths.ostree_json))
    except (OSError, ValueError):
        return None


def _debs(paths: ComposePaths) -> frozenset[str] | None:
    try:
        lock = lockfile.load(paths.lockfile)
    except (OSError, ValueError):
        return None
    return frozenset(p.sha256 for arches in lock.variants.values() for v in arches.values() for p in v.packages)


def latest_links(target: TargetPaths) -> dict[str, str]:
    """compose ID -> the ``latest-`` link naming it."""
    out = {}
    for link in sorted(target.target.glob("latest-*")):
        if link.is_symlink():
            dest = os.readlink(link)
            if "/" not in dest:
                out[dest] = link.name
    return out


def used_commits(target: TargetPaths) -> dict[str, list[str]]:
    """commit -> who uses it from outside the compose directories (published refs)."""
    out: dict[str, list[str]] = {}
    for use in published_commits(target):
        out.setdefault(use.commit, []).append(use.why)
    return out


def tree_bytes(paths: list[Path]) -> int:
    """Bytes (allocated) removing ``paths`` (files or trees) frees: a file counts when all its hard links are among
    them."""
    seen: dict[tuple[int, int], list[int]] = {}

    def count(path: str) -> None:
        try:
            st = os.lstat(path)
        except OSError:
            return
        entry = seen.setdefault((st.st_dev, st.st_ino), [0, st.st_nlink, st.st_blocks * 512])
        entry[0] += 1

    for top in paths:
        if not top.is_dir() or top.is_symlink():
            count(str(top))
            continue
        for root, _dirs, files in os.walk(top):
            for name in files:
                count(os.path.join(root, name))
    return sum(size for links, nlink, size in seen.values() if links >= nlink)
