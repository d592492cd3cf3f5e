"""Which paths may sit in a layer shared by several variants' images, checked against the trees themselves.

A package (or the kernel) present in several variants of one compose gets one layer for all of them, so
its tar must be byte-identical in every image: every path it holds, and every parent directory the layer
carries, must have the same tar header (type, mode, owner, clamped mtime, link target, extended
attributes, hardlink target) and the same bytes in every variant holding the package. A path that differs
in any of them (an os-release rewritten for one variant, a file a postprocess script or a trigger changed,
one owned by another package there) leaves the package's layer in *every* variant and goes to each
variant's own last layer; a hardlink group leaves whole. A directory that is a directory everywhere but
with other metadata (an mtime a different package gave it) does not take what is below it along: every
layer but the last writes it as the first variant holding it has it, and each image's last layer writes
it again as the image has it (the last layer's wins). Nothing is assumed from package names or versions:
the trees are compared.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable, Mapping

from deb_bootc_compose.oci.analysis import UNOWNED, TreeAnalysis
from deb_bootc_compose.oci.tarlayer import read_xattrs
from deb_bootc_compose.oci.tree import TreeError

Fingerprint = tuple[object, ...]


class _Prints:
    """Fingerprints of one tree's paths (computed once)."""

    def __init__(self, analysis: TreeAnalysis, source_date_epoch: int) -> None:
        self.a = analysis
        self.sde = source_date_epoch
        self.meta: dict[str, Fingerprint | None] = {}
        self.data: dict[str, str] = {}
        self.groups = analysis.groups()

    def metadata(self, path: str) -> Fingerprint | None:
        """What the tar header says about ``path`` (None: not in the tree)."""
        if path not in self.meta:
            entry = self.a.entries.get(path)
            if entry is None:
                self.meta[path] = None
            else:
                st = entry.st
                abs_path = os.path.join(os.fspath(self.a.tree), path)
                link = os.readlink(abs_path) if stat.S_ISLNK(st.st_mode) else None
                dev = st.st_rdev if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else None
                size = st.st_size if stat.S_ISREG(st.st_mode) else 0
                xattrs = tuple(sorted(read_xattrs(abs_path, self.a.ids).items()))
                self.meta[path] = (st.st_mode, st.st_uid, st.st_gid, min(int(st.st_mtime), self.sde), size, link,
                                   dev, xattrs, self.a.hardlinks.get(path))
        return self.meta[path]

    def content(self, path: str) -> str:
        if path not in self.data:
            abs_path = os.path.join(os.fspath(self.a.tree), path)
            try:
                fd = os.open(abs_path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
                with os.fdopen(fd, "rb") as fh:
                    self.data[path] = hashlib.file_digest(fh, "sha256").hexdigest()
            except OSError as exc:
                raise TreeError(f"cannot read {abs_path}: {exc.strerror}") from exc
        return self.data[path]


def _same(prints: list[_Prints], path: str) -> bool:
    first = prints[0].metadata(path)
    if first is None or any(p.metadata(path) != first for p in prints[1:]):
        return False
    entry = prints[0].a.entries[path]
    if not entry.is_reg or prints[0].a.hardlinks.get(path) is not None or entry.st.st_size == 0:
        return True
    return len({p.content(path) for p in prints}) == 1


def _unit_differences(unit: str, holders: list[_Prints], by_unit: list[dict[str, list[str]]],
                      same: Callable[[tuple[int, ...], str], bool], key: tuple[int, ...]) -> set[str]:
    """Paths of ``unit`` that cannot sit in its shared layer (in any of its holders)."""
    candidates = sorted({p for paths in by_unit for p in paths.get(unit, ())}, key=os.fsencode)
    out = {
        path for path in candidates
        if any(h.a.units.get(path) != unit for h in holders)
        or not (all(h.a.entries[path].is_dir for h in holders) or same(key, path))
    }
    # a hardlink group leaves whole, in every holder
    changed = bool(out)
    while changed:
        changed = False
        for h in holders:
            for group in h.groups.values():
                if h.a.units[group[0]] == unit and out.intersection(group) and not out.issuperset(group):
                    out.update(group)
                    changed = True
    return out


def separate_differences(analyses: Mapping[str, TreeAnalysis], source_date_epoch: int,
                         check: Callable[[], None] | None = None) -> dict[str, set[str]]:
    """Move every path that differs between the variants holding its unit to the variant's own layer
    (``units[path] = UNOWNED`` in place, in every holder); returns variant → the paths moved."""
    names = list(analyses)
    prints = [_Prints(analyses[v], source_date_epoch) for v in names]
    by_unit = [analyses[v].paths_by_unit() for v in names]
    verdicts: dict[tuple[tuple[int, ...], str], bool] = {}

    def same(key: tuple[int, ...], path: str) -> bool:
        if (key, path) not in verdicts:
            verdicts[(key, path)] = _same([prints[i] for i in key], path)
        return verdicts[(key, path)]

    units = sorted({u for paths in by_unit for u in paths if u != UNOWNED}, key=os.fsencode)
    moved: dict[str, set[str]] = {v: set() for v in names}
    for unit in units:
        key = tuple(i for i, paths in enumerate(by_unit) if unit in paths)
        if len(key) < 2:
            continue
        if check is not None:
            check()
        out = _unit_differences(unit, [prints[i] for i in key], [by_unit[i] for i in key], same, key)
        for i in key:
            mine = [p for p in out if analyses[names[i]].units.get(p) == unit]
            moved[names[i]].update(mine)
    for v, paths in moved.items():
        for path in paths:
            analyses[v].units[path] = UNOWNED
    _harmonize_dirs(prints)
    return moved


def _harmonize_dirs(prints: list[_Prints]) -> None:
    """Directories of several trees whose metadata differs: written as the first tree has them in every layer
    but the last, and again as each tree has them in its last layer."""
    dirs: dict[str, list[_Prints]] = {}
    for p in prints:
        for path, entry in p.a.entries.items():
            if entry.is_dir:
                dirs.setdefault(path, []).append(p)
    for path, holders in dirs.items():
        if len(holders) < 2 or len({h.metadata(path) for h in holders}) == 1:
            continue
        first = holders[0].a
        for h in holders:
            h.a.dir_sources[path] = (first.tree, first.entries[path])
            h.a.restate.add(path)
