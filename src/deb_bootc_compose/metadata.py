"""Compose metadata in productmd's envelope: ``composeinfo.json``, ``images.json`` (written with productmd
itself, so every tool that reads Pungi composes reads ours) and ``packages.json`` (our own type, same
envelope: every .deb of every image with its source package, sha256 and the apt source it came from) and
``ostree.json`` (our own type: the ref and the exact commit of each variant/arch, which ``install-to-disk``
and ``boot-test`` use even after the ref in the shared repository has moved on).

Functions take plain data (dataclasses, dicts): the phase gathers it from the compose context, tests and
other tools can call them directly. Paths in the metadata are relative to the compose directory (the one
holding ``metadata/``), as ``productmd.compose.Compose(dir)`` resolves them.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import productmd.common
import productmd.composeinfo
import productmd.images

PACKAGES_TYPE = "deb-bootc-compose.packages"
PACKAGES_VERSION = "1.0"
OSTREE_TYPE = "deb-bootc-compose.ostree"
OSTREE_VERSION = "1.0"
EXTRA_FILES_TYPE = "deb-bootc-compose.extra-files"
EXTRA_FILES_VERSION = "1.0"

# productmd accepts RPM architecture names only; Debian's that it lacks are mapped to their RPM twin.
PRODUCTMD_ARCH = {"armhf": "armhfp", "ppc64el": "ppc64le", "armel": "armv5tel"}


class MetadataError(ValueError):
    """Metadata cannot be written or read; the message says what and where."""


@dataclass(frozen=True)
class ComposeMeta:
    compose_id: str  # debian-bootc-13-20261122.t.0
    release_name: str
    release_short: str
    release_version: str
    release_type: str = "ga"
    label: str | None = None


@dataclass(frozen=True)
class ImageMeta:
    variant: str
    arch: str  # Debian's name
    path: str  # relative to the compose directory
    type: str  # bootable-container, qcow2, raw
    format: str  # ociarchive, qcow2, raw
    size: int
    sha256: str
    mtime: int
    bootable: bool = False
    subvariant: str | None = None


@dataclass(frozen=True)
class PackageMeta:
    name: str
    version: str
    arch: str
    source: str
    source_version: str
    sha256: str
    size: int = 0
    filename: str = ""
    url: str = ""
    apt_source: str = ""  # the apt source (sources.list URL) that provided it
    # set when the .deb came from an orchestrator tag and this compose's build phase asked for its build
    orchestrator_build: int | None = None  # the hub's build ID
    orchestrator_task: int | None = None  # the build's top-level task ID


@dataclass
class VariantMeta:
    name: str
    arches: list[str] = field(default_factory=list)
    images_dir: dict[str, str] = field(default_factory=dict)  # arch → dir relative to the compose directory


def productmd_arch(arch: str) -> str:
    mapped = PRODUCTMD_ARCH.get(arch, arch)
    if mapped not in productmd.common.RPM_ARCHES:
        raise MetadataError(f"architecture {arch!r} has no name productmd accepts; cannot write images.json for it")
    return mapped


def variant_uid(name: str) -> str:
    """productmd variant IDs are ``[a-zA-Z0-9]+``: ``base`` stays, ``kde-desktop`` becomes ``kdedesktop``."""
    uid = re.sub(r"[^A-Za-z0-9]", "", name)
    if not uid:
        raise MetadataError(f"variant name {name!r} has no letter or digit to make a productmd variant ID from")
    return uid


def release_short(name: str) -> str:
    short = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    if not short or not short[0].isalpha():
        short = f"d{short}" if short else "debian"
    return short


def _set_compose(target: Any, meta: ComposeMeta) -> None:
    date, ctype, respin = productmd.composeinfo.get_date_type_respin(meta.compose_id)
    if date is None:
        raise MetadataError(f"compose ID {meta.compose_id!r} carries no YYYYMMDD date; productmd needs one")
    target.id = meta.compose_id
    target.date = date
    target.type = ctype
    target.respin = respin
    target.label = meta.label


def compose_info(meta: ComposeMeta, variants: Iterable[VariantMeta]) -> productmd.composeinfo.ComposeInfo:
    ci = productmd.composeinfo.ComposeInfo()
    _set_compose(ci.compose, meta)
    ci.release.name = meta.release_name
    ci.release.short = release_short(meta.release_short)
    ci.release.version = meta.release_version
    ci.release.type = meta.release_type
    ci.release.is_layered = False
    seen: dict[str, str] = {}
    for vm in variants:
        uid = variant_uid(vm.name)
        if uid in seen:
            raise MetadataError(f"variants {seen[uid]!r} and {vm.name!r} both become productmd variant ID {uid!r}")
        seen[uid] = vm.name
        variant = productmd.composeinfo.Variant(ci)
        variant.id = uid
        variant.uid = uid
        variant.name = vm.name
        variant.type = "variant"
        variant.arches = {productmd_arch(a) for a in vm.arches}
        for arch, rel in vm.images_dir.items():
            variant.paths.images[productmd_arch(arch)] = rel
        ci.variants.add(variant)
    return ci


def images_manifest(meta: ComposeMeta, images: Iterable[ImageMeta]) -> productmd.images.Images:
    im = productmd.images.Images()
    _set_compose(im.compose, meta)
    for item in images:
        allowed = productmd.images.IMAGE_TYPE_FORMAT_MAPPING.get(item.type)
        if allowed is None or item.format not in allowed:
            raise MetadataError(
                f"{item.path}: image type {item.type!r} with format {item.format!r} is not one productmd knows "
                "(use bootable-container/ociarchive, qcow2/qcow2 or raw/raw)"
            )
        if not item.sha256:
            raise MetadataError(f"{item.path}: no SHA256 (the checksums phase must run before metadata)")
        image = productmd.images.Image(im)
        image.path = item.path
        image.mtime = int(item.mtime)
        image.size = int(item.size)
        image.volume_id = None
        image.type = item.type
        image.format = item.format
        image.arch = productmd_arch(item.arch)
        image.disc_number = 1
        image.disc_count = 1
        image.checksums = {"sha256": item.sha256}
        image.bootable = item.bootable
        image.subvariant = item.subvariant or item.variant
        im.add(variant_uid(item.variant), image.arch, image)
    return im


def packages_manifest(meta: ComposeMeta, packages: Mapping[str, Mapping[str, Iterable[PackageMeta]]]) -> dict[str, Any]:
    """``packages[variant][arch]`` → the packages.json document (productmd envelope, our type)."""
    date, ctype, respin = productmd.composeinfo.get_date_type_respin(meta.compose_id)
    payload: dict[str, Any] = {
        "compose": {"id": meta.compose_id, "date": date, "type": ctype, "respin": respin},
        "packages": {},
    }
    for variant in sorted(packages):
        for arch in sorted(packages[variant]):
            rows = sorted(packages[variant][arch], key=lambda p: (p.name, p.arch, p.version))
            payload["packages"].setdefault(variant, {})[arch] = [asdict(p) for p in rows]
    return {"header": {"type": PACKAGES_TYPE, "version": PACKAGES_VERSION}, "payload": payload}


@dataclass(frozen=True)
class OstreeMeta:
    """The OSTree commit one variant/arch of a compose produced (the ref may move on; the commit does not)."""

    variant: str
    arch: str
    ref: str
    commit: str
    repo: str = "../ostree/repo"  # relative to the compose directory


def ostree_manifest(meta: ComposeMeta, commits: Iterable[OstreeMeta]) -> dict[str, Any]:
    """The ``metadata/ostree.json`` document: ``payload.variants[variant][arch] = {ref, commit, repo}``."""
    date, ctype, respin = productmd.composeinfo.get_date_type_respin(meta.compose_id)
    variants: dict[str, dict[str, dict[str, str]]] = {}
    for c in sorted(commits, key=lambda c: (c.variant, c.arch)):
        if not re.fullmatch(r"[0-9a-f]{64}", c.commit):
            raise MetadataError(f"{c.variant}/{c.arch}: {c.commit!r} is not an OSTree commit checksum")
        variants.setdefault(c.variant, {})[c.arch] = {"ref": c.ref, "commit": c.commit, "repo": c.repo}
    return {"header": {"type": OSTREE_TYPE, "version": OSTREE_VERSION},
            "payload": {"compose": {"id": meta.compose_id, "date": date, "type": ctype, "respin": respin},
                        "variants": variants}}


@dataclass(frozen=True)
class ExtraFileMeta:
    """A file of the compose that images.json has no place for (an SBOM, what a plugin writes)."""

    path: str  # relative to the compose directory
    kind: str  # sbom, ...
    format: str  # spdx-2.3+json, ...
    plugin: str  # the plugin that wrote it
    variant: str = ""  # "" for a file of the whole compose
    arch: str = ""
    size: int = 0
    sha256: str = ""


def extra_files_manifest(meta: ComposeMeta, files: Iterable[ExtraFileMeta]) -> dict[str, Any]:
    """The ``metadata/extra-files.json`` document: ``payload.files`` = every extra file with its checksum."""
    date, ctype, respin = productmd.composeinfo.get_date_type_respin(meta.compose_id)
    rows = []
    for f in sorted(files, key=lambda f: f.path):
        if not re.fullmatch(r"[0-9a-f]{64}", f.sha256):
            raise MetadataError(f"{f.path}: no SHA-256 recorded")
        rows.append(asdict(f))
    return {"header": {"type": EXTRA_FILES_TYPE, "version": EXTRA_FILES_VERSION},
            "payload": {"compose": {"id": meta.compose_id, "date": date, "type": ctype, "respin": respin},
                        "files": rows}}


def load_extra_files(path: Path) -> list[ExtraFileMeta]:
    """Read ``metadata/extra-files.json`` back (checks the envelope)."""
    data = _read_envelope(path, EXTRA_FILES_TYPE, EXTRA_FILES_VERSION, "extra-files.json")
    known = set(ExtraFileMeta.__dataclass_fields__)
    try:
        return [ExtraFileMeta(**{k: v for k, v in row.items() if k in known}) for row in data["payload"]["files"]]
    except (KeyError, TypeError, AttributeError) as exc:
        raise MetadataError(f"{path}: malformed payload ({exc!r})") from None


def _read_envelope(path: Path, kind: str, version: str, what: str) -> Any:
    """A JSON file of ours (``what``, e.g. "ostree.json") in productmd's envelope: its header names ``kind``
    and the same major version."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MetadataError(f"{path} does not exist") from None
    except (OSError, ValueError) as exc:
        raise MetadataError(f"{path} is not readable JSON: {exc}") from None
    header = data.get("header") if isinstance(data, dict) else None
    if not isinstance(header, dict) or header.get("type") != kind:
        raise MetadataError(f"{path} is not a deb-bootc-compose {what} (header type is not {kind!r})")
    if str(header.get("version", "")).split(".")[0] != version.split(".")[0]:
        raise MetadataError(f"{path}: {what} version {header.get('version')!r} is not supported")
    return data


def load_ostree(path: Path) -> list[OstreeMeta]:
    """Read ``metadata/ostree.json`` back (checks the envelope)."""
    data = _read_envelope(path, OSTREE_TYPE, OSTREE_VERSION, "ostree.json")
    try:
        return [OstreeMeta(variant, arch, str(e["ref"]), str(e["commit"]), str(e.get("repo", "../ostree/repo")))
                for variant, arches in data["payload"]["variants"].items() for arch, e in arches.items()]
    except (KeyError, TypeError, AttributeError) as exc:
        raise MetadataError(f"{path}: malformed payload ({exc!r})") from None


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def dump(obj: productmd.common.MetadataBase, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    obj.dump(str(tmp))
    os.replace(tmp, path)


def load_packages(path: Path) -> dict[str, dict[str, list[PackageMeta]]]:
    """Read a packages.json back (checks the envelope); variant → arch → packages."""
    data = _read_envelope(path, PACKAGES_TYPE, PACKAGES_VERSION, "packages.json")
    known = set(PackageMeta.__dataclass_fields__)
    result: dict[str, dict[str, list[PackageMeta]]] = {}
    try:
        for variant, arches in data["payload"]["packages"].items():
            for arch, rows in arches.items():
                result.setdefault(variant, {})[arch] = [
                    PackageMeta(**{k: v for k, v in row.items() if k in known}) for row in rows
                ]
    except (KeyError, TypeError, AttributeError) as exc:
        raise MetadataError(f"{path}: malformed payload ({exc!r})") from None
    return result
