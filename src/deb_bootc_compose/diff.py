"""Packages added, removed and changed between two composes.

Each side is a compose directory (or a ``latest-*`` symlink to one), read from its
``metadata/packages.json``; a compose without one (interrupted before metadata) is read from its
``metadata/lockfile.yaml``. A packages.json or lockfile.yaml path works too. Packages are compared per
variant/arch, keyed by (name, arch); versions are ordered the way dpkg orders them. When both sides are
compose directories, their OCI images are compared too: how many layers changed and how many bytes a
client holding the old image pulls to get the new one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from debian.debian_support import Version

from deb_bootc_compose.metadata import MetadataError, PackageMeta, load_packages
from deb_bootc_compose.paths import ComposePaths


class DiffError(ValueError):
    """A side cannot be read; the message names it and says what to give instead."""


@dataclass(frozen=True)
class Change:
    name: str
    arch: str
    old: str
    new: str

    @property
    def direction(self) -> str:
        return "upgrade" if Version(self.new) > Version(self.old) else "downgrade"


@dataclass
class VariantDiff:
    added: list[PackageMeta] = field(default_factory=list)
    removed: list[PackageMeta] = field(default_factory=list)
    changed: list[Change] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)


@dataclass(frozen=True)
class ImageLayers:
    manifest_digest: str
    layers: dict[str, int]  # layer digest → compressed size


@dataclass(frozen=True)
class ImageChange:
    old_digest: str
    new_digest: str
    layers: int  # in the new image
    changed_layers: int  # layers of the new image the old one does not have
    bytes_to_pull: int
    total_bytes: int


@dataclass
class ComposeSide:
    label: str  # compose ID or file name
    packages: dict[str, dict[str, list[PackageMeta]]]  # variant → arch → packages
    source: Path
    images: dict[str, ImageLayers] = field(default_factory=dict)  # "variant/arch" → its OCI image


@dataclass
class ComposeDiff:
    old: ComposeSide
    new: ComposeSide
    variants: dict[str, VariantDiff]  # "variant/arch" → diff
    images: dict[str, ImageChange] = field(default_factory=dict)  # when both sides are compose directories

    @property
    def empty(self) -> bool:
        return all(v.empty for v in self.variants.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "old": {"compose": self.old.label, "source": str(self.old.source)},
            "new": {"compose": self.new.label, "source": str(self.new.source)},
            "variants": {
                key: {
                    "added": [{"name": p.name, "arch": p.arch, "version": p.version} for p in d.added],
                    "removed": [{"name": p.name, "arch": p.arch, "version": p.version} for p in d.removed],
                    "changed": [
                        {"name": c.name, "arch": c.arch, "old": c.old, "new": c.new, "direction": c.direction}
                        for c in d.changed
                    ],
                }
                for key, d in self.variants.items()
            },
            "images": {
                key: {
                    "old_digest": c.old_digest,
                    "new_digest": c.new_digest,
                    "layers": c.layers,
                    "changed_layers": c.changed_layers,
                    "bytes_to_pull": c.bytes_to_pull,
                    "total_bytes": c.total_bytes,
                }
                for key, c in self.images.items()
            },
        }

    def human(self) -> str:
        lines = [f"old: {self.old.label}", f"new: {self.new.label}"]
        for key, d in self.variants.items():
            lines.append("")
            lines.append(f"{key}: {len(d.added)} added, {len(d.removed)} removed, {len(d.changed)} changed")
            lines += [f"  + {p.name}:{p.arch} {p.version}" for p in d.added]
            lines += [f"  - {p.name}:{p.arch} {p.version}" for p in d.removed]
            lines += [f"  ~ {c.name}:{c.arch} {c.old} -> {c.new} ({c.direction})" for c in d.changed]
        if self.empty:
            lines.append("")
            lines.append("no package differences")
        if self.images:
            lines.append("")
        for key, c in self.images.items():
            if c.old_digest == c.new_digest:
                lines.append(f"OCI {key}: same image {c.new_digest}")
            else:
                share = 100 * c.bytes_to_pull / c.total_bytes if c.total_bytes else 0.0
                lines.append(
                    f"OCI {key}: {c.changed_layers} of {c.layers} layers changed, "
                    f"{c.bytes_to_pull / 1e6:.1f} MB of {c.total_bytes / 1e6:.1f} MB to pull ({share:.1f}%)"
                )
        return "\n".join(lines)


def _from_lockfile(path: Path) -> dict[str, dict[str, list[PackageMeta]]]:
    from deb_bootc_compose.lockfile import LockfileError
    from deb_bootc_compose.lockfile import load as load_lockfile

    try:
        lock = load_lockfile(path)
    except LockfileError as exc:
        raise DiffError(str(exc)) from None
    result: dict[str, dict[str, list[PackageMeta]]] = {}
    for variant, arches in lock.variants.items():
        for arch, locked in arches.items():
            result.setdefault(variant, {})[arch] = [
                PackageMeta(
                    name=p.name,
                    version=p.version,
                    arch=p.arch,
                    source=p.source or p.name,
                    source_version=p.source_version or p.version,
                    sha256=p.sha256,
                    size=p.size,
                    filename=p.filename,
                    url=p.url,
                    apt_source=p.repo,
                )
                for p in locked.packages
            ]
    return result


def read_images(topdir: Path) -> dict[str, ImageLayers]:
    """The OCI images of a compose directory (``compose/<variant>/<arch>/oci/*/index.json``)."""
    found: dict[str, ImageLayers] = {}
    for index_path in sorted(ComposePaths.at(topdir).deliverables.glob("*/*/oci/*/index.json")):
        layout = index_path.parent
        variant, arch = index_path.parts[-5], index_path.parts[-4]
        try:
            index = json.loads(index_path.read_text(encoding="utf-8"))
            digest = index["manifests"][0]["digest"]
            blob = layout / "blobs" / "sha256" / digest.split(":", 1)[1]
            manifest = json.loads(blob.read_text(encoding="utf-8"))
            layers = {layer["digest"]: int(layer["size"]) for layer in manifest["layers"]}
        except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
            raise DiffError(f"{layout}: not a readable OCI layout ({exc!r})") from None
        found[f"{variant}/{arch}"] = ImageLayers(digest, layers)
    return found


def compare_images(old: ImageLayers, new: ImageLayers) -> ImageChange:
    fresh = {d: size for d, size in new.layers.items() if d not in old.layers}
    return ImageChange(
        old_digest=old.manifest_digest,
        new_digest=new.manifest_digest,
        layers=len(new.layers),
        changed_layers=len(fresh),
        bytes_to_pull=sum(fresh.values()),
        total_bytes=sum(new.layers.values()),
    )


def load_side(path: Path) -> ComposeSide:
    """A compose directory, a packages.json or a lockfile.yaml → its packages."""
    if not path.exists():
        raise DiffError(f"{path} does not exist (give a compose directory, its packages.json or its lockfile.yaml)")
    resolved = path.resolve()
    try:
        if resolved.is_dir():
            paths = ComposePaths.at(resolved)
            packages_json, lockfile = paths.packages_json, paths.lockfile
            if packages_json.is_file():
                return ComposeSide(resolved.name, load_packages(packages_json), packages_json, read_images(resolved))
            if lockfile.is_file():
                return ComposeSide(resolved.name, _from_lockfile(lockfile), lockfile, read_images(resolved))
            raise DiffError(
                f"{path} has neither metadata/packages.json nor metadata/lockfile.yaml: "
                "is it a compose directory (TARGET/<COMPOSE_ID>, not the target directory itself)?"
            )
        if resolved.suffix in (".yaml", ".yml"):
            return ComposeSide(resolved.name, _from_lockfile(resolved), resolved)
        return ComposeSide(resolved.parent.parent.name, load_packages(resolved), resolved)
    except MetadataError as exc:
        raise DiffError(str(exc)) from None


def diff_packages(old: list[PackageMeta], new: list[PackageMeta]) -> VariantDiff:
    before = {(p.name, p.arch): p for p in old}
    after = {(p.name, p.arch): p for p in new}
    result = VariantDiff()
    for key in sorted(after.keys() - before.keys()):
        result.added.append(after[key])
    for key in sorted(before.keys() - after.keys()):
        result.removed.append(before[key])
    for key in sorted(before.keys() & after.keys()):
        if before[key].version != after[key].version:
            result.changed.append(Change(key[0], key[1], before[key].version, after[key].version))
    return result


def diff_composes(old_path: Path, new_path: Path) -> ComposeDiff:
    old = load_side(old_path)
    new = load_side(new_path)
    keys = sorted(
        {(v, a) for v, arches in old.packages.items() for a in arches}
        | {(v, a) for v, arches in new.packages.items() for a in arches}
    )
    variants = {
        f"{v}/{a}": diff_packages(old.packages.get(v, {}).get(a, []), new.packages.get(v, {}).get(a, []))
        for v, a in keys
    }
    images = {key: compare_images(old.images[key], new.images[key]) for key in sorted(old.images.keys() & new.images)}
    return ComposeDiff(old, new, variants, images)
