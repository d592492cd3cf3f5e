"""What one tree holds, for the layer plan: every path's unit (a package, the kernel, or the variant's own
layer), hardlink groups and the bytes each package brings."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from deb_bootc_compose.oci.dpkg_owners import read_ownership
from deb_bootc_compose.oci.errors import OciError
from deb_bootc_compose.oci.tree import TreeEntry, scan_tree
from debsandbox.idmap import IdMap

KERNEL = "kernel"
UNOWNED = "unowned"  # the image's last layer: files no package owns, and files that differ between variants


@dataclass
class TreeAnalysis:
    tree: Path
    entries: dict[str, TreeEntry]  # tree order
    units: dict[str, str]  # path → package name, KERNEL or UNOWNED
    hardlinks: dict[str, str]  # hardlink follower → the first path of its group in tree order
    kernel_packages: set[str]
    packages: list[str]  # dpkg's package names but the kernel's, sorted
    ids: IdMap | None = None
    # directories whose metadata differs between variants: every layer but the last writes them as the
    # first variant (in compose order) has them (tree, entry); the last layer writes them as they are here
    dir_sources: dict[str, tuple[Path, TreeEntry]] = field(default_factory=dict)
    restate: set[str] = field(default_factory=set)

    def sizes(self) -> dict[str, int]:
        """Package → bytes of the regular files its layer holds (hardlink followers not counted again)."""
        sizes = dict.fromkeys(self.packages, 0)
        for path, unit in self.units.items():
            entry = self.entries[path]
            if unit in (KERNEL, UNOWNED) or not entry.is_reg or path in self.hardlinks:
                continue
            sizes[unit] = sizes.get(unit, 0) + entry.st.st_size
        return sizes

    def paths_by_unit(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for path, unit in self.units.items():
            out.setdefault(unit, []).append(path)
        return out

    def groups(self) -> dict[str, list[str]]:
        """Leader → every path of its hardlink group (leader first), for groups of two or more."""
        out: dict[str, list[str]] = {}
        for follower, leader in self.hardlinks.items():
            out.setdefault(leader, [leader]).append(follower)
        return out


def _kernel_prefix(tree: Path, entries: dict[str, TreeEntry], kernel_version: str | None) -> str | None:
    if kernel_version is None:
        return None
    prefix = f"usr/lib/modules/{kernel_version}"
    top = entries.get(prefix)
    if top is None or not top.is_dir:
        raise OciError(
            f"kernel version {kernel_version} was given but {tree / prefix} is not a directory: "
            "the tree must carry its kernel, initramfs and modules there (see ostree-prepare)"
        )
    return prefix


def analyze_tree(tree: Path, kernel_version: str | None, ids: IdMap | None = None,
                 entries: dict[str, TreeEntry] | None = None) -> TreeAnalysis:
    """Scan ``tree`` (unless ``entries`` are given) and give every path its unit by dpkg ownership: the
    kernel's (``usr/lib/modules/<kernel_version>`` and every package owning files there), a package's, or
    UNOWNED. A hardlink group stays together, in the unit of its first path in tree order."""
    if entries is None:
        entries = scan_tree(tree, ids)
    ownership = read_ownership(tree, entries)
    prefix = _kernel_prefix(tree, entries, kernel_version)

    def in_kernel(path: str) -> bool:
        return prefix is not None and (path == prefix or path.startswith(prefix + "/"))

    kernel_packages: set[str] = set()
    for path in entries:
        if in_kernel(path):
            kernel_packages.update(ownership.owners.get(path, ()))
    units: dict[str, str] = {}
    for path in entries:
        owner = ownership.owner(path)
        if in_kernel(path) or owner in kernel_packages:
            units[path] = KERNEL
        else:
            units[path] = UNOWNED if owner is None else owner
    leaders: dict[tuple[int, int], str] = {}
    hardlinks: dict[str, str] = {}
    for path, entry in entries.items():
        if entry.is_dir or entry.st.st_nlink < 2:
            continue
        key = (entry.st.st_dev, entry.st.st_ino)
        leader = leaders.setdefault(key, path)
        if leader != path:
            hardlinks[path] = leader
            units[path] = units[leader]
    packages = [p for p in ownership.packages if p not in kernel_packages]
    return TreeAnalysis(tree, entries, units, hardlinks, kernel_packages, packages, ids)
