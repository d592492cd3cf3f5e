"""The OCI images of a compose directory, and where each goes in a registry.

A compose keeps its manifest (``metadata/manifest.yaml``) and one OCI layout per variant/arch
(``compose/<variant>/<arch>/oci/layout/``, :class:`~deb_bootc_compose.paths.ComposePaths`). The destination
repository of a variant is the command line's ``REGISTRY/NAME[:TAG]`` (``{variant}``, ``{name}`` and
``{arch}`` filled in) or the manifest's ``update.registry.name``; the tags are the given TAG (default: the
manifest's version) and ``latest``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from deb_bootc_compose import status
from deb_bootc_compose.manifest import Manifest, ManifestError, load
from deb_bootc_compose.paths import ComposePaths
from deb_bootc_compose.updatespec import REGISTRY_FIELDS, REGISTRY_NAME

TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
MAX_INDEX = 1024 * 1024
LATEST = "latest"


class PushError(RuntimeError):
    """The push cannot start or failed; the message says what, where, and what to do."""


@dataclass(frozen=True)
class ComposeImage:
    variant: str
    arch: str
    layout: Path  # the OCI layout directory
    ref_name: str  # its tag in the layout
    digest: str  # the image manifest's digest (kept in the registry: --preserve-digests)


@dataclass(frozen=True)
class Destination:
    repository: str  # HOST[:PORT]/PATH
    tags: tuple[str, ...]

    @property
    def host(self) -> str:
        return self.repository.split("/", 1)[0]


def load_compose(topdir: Path) -> tuple[Manifest, list[ComposeImage]]:
    """The compose's manifest and its OCI images; PushError when it is not a finished compose with images."""
    paths = ComposePaths.at(topdir)
    if not topdir.is_dir() or not paths.status.is_file():
        raise PushError(f"{topdir} is not a compose directory (no STATUS file); give TARGET/<COMPOSE_ID> or a "
                        "latest-* link")
    state = status.read(paths)
    if state not in (status.FINISHED, status.FINISHED_INCOMPLETE):
        raise PushError(f"{topdir} is {state}: only a FINISHED compose is pushed")
    try:
        manifest = load(paths.manifest_copy, check_files=False)
    except ManifestError as exc:
        raise PushError(f"{paths.manifest_copy}: the compose's manifest does not load: {exc}") from None
    except OSError as exc:
        raise PushError(f"{paths.manifest_copy}: {exc.strerror}") from None
    images = [img for v in manifest.variants for a in manifest.arches
              if (img := _layout_image(paths, v, a)) is not None]
    if not images:
        raise PushError(f"{topdir} has no OCI image (compose/<variant>/<arch>/oci/layout/): was it composed with "
                        "the oci phase skipped or without 'oci' in outputs?")
    return manifest, images


def _layout_image(paths: ComposePaths, variant: str, arch: str) -> ComposeImage | None:
    layout = paths.oci_dir(variant, arch) / "layout"
    index_path = layout / "index.json"
    if index_path.is_symlink() or layout.is_symlink():
        raise PushError(f"{layout}: a symbolic link where the compose writes its OCI layout; refusing it")
    if not index_path.is_file():
        return None
    try:
        if index_path.stat().st_size > MAX_INDEX:
            raise ValueError("index.json too large")
        index = json.loads(index_path.read_text(encoding="utf-8"))
        entries = [m for m in index["manifests"] if isinstance(m, dict)]
        entry = entries[0]
        ref_name = str(entry["annotations"]["org.opencontainers.image.ref.name"])
        digest = str(entry["digest"])
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise PushError(f"{index_path}: not a readable OCI layout index ({exc!r})") from None
    if len(entries) != 1 or not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
        raise PushError(f"{index_path}: expected one image manifest with a sha256 digest")
    return ComposeImage(variant, arch, layout, ref_name, digest)


def _template_and_tag(manifest: Manifest, given: str | None) -> tuple[str, str]:
    if given is None:
        if manifest.update is None or manifest.update.registry is None:
            raise PushError("the compose's manifest has no update.registry.name: give the destination as "
                            "REGISTRY/NAME[:TAG] (e.g. registry.example.org/debian-bootc/{variant})")
        template, tag = manifest.update.registry.name, str(manifest.version)
    else:
        template, given_tag = _split(given)
        tag = given_tag or str(manifest.version)
    if not TAG.match(tag):
        raise PushError(f"{tag!r} is not a valid image tag (letters, digits, '_', '.', '-'; at most 128)")
    return template, tag


def _repository(template: str, manifest: Manifest, variant: str, arch: str) -> str:
    repo = template.format(name=manifest.name, variant=variant, arch=arch)
    if not REGISTRY_NAME.match(repo):
        raise PushError(f"{repo!r} is not a registry repository HOST[:PORT]/PATH (lower case, no scheme)")
    return repo


def destinations(manifest: Manifest, images: list[ComposeImage], given: str | None) -> dict[ComposeImage, Destination]:
    """Where each image goes: ``given`` (REGISTRY/NAME[:TAG]) or ``update.registry.name``. With several arches
    each arch has its own tags (``TAG-ARCH``, ``latest-ARCH``); :func:`index_destinations` names the index's."""
    template, tag = _template_and_tag(manifest, given)
    if len({i.variant for i in images}) > 1 and "{variant}" not in template:
        raise PushError(f"the compose has several variants ({', '.join(sorted({i.variant for i in images}))}): "
                        "put {variant} in the destination so that each has its own repository")
    several_arches = len({i.arch for i in images}) > 1
    if several_arches and "{arch}" in template:
        raise PushError("the compose has several arches: they share one repository (an image index); "
                        "leave {arch} out of the destination")
    out: dict[ComposeImage, Destination] = {}
    for img in images:
        repo = _repository(template, manifest, img.variant, img.arch)
        tags = (f"{tag}-{img.arch}", f"{LATEST}-{img.arch}") if several_arches else (tag, LATEST)
        out[img] = Destination(repo, tuple(dict.fromkeys(tags)))
    return out


def index_destinations(manifest: Manifest, images: list[ComposeImage], given: str | None
                       ) -> dict[str, tuple[Destination, list[ComposeImage]]]:
    """variant → (where its image index goes: ``TAG`` and ``latest``, its arch images) for every variant
    composed for several arches; empty when the compose has one arch."""
    if len({i.arch for i in images}) < 2:
        return {}
    template, tag = _template_and_tag(manifest, given)
    out: dict[str, tuple[Destination, list[ComposeImage]]] = {}
    for variant in sorted({i.variant for i in images}):
        members = sorted((i for i in images if i.variant == variant), key=lambda i: i.arch)
        out[variant] = (Destination(_repository(template, manifest, variant, ""), (tag, LATEST)), members)
    return out


def _split(given: str) -> tuple[str, str | None]:
    given = given.removeprefix("docker://")
    if "@" in given:
        raise PushError(f"{given}: give a tag, not a digest (the digest is the compose's)")
    last = given.rsplit("/", 1)
    if len(last) == 2 and ":" in last[1]:
        name, tag = given.rsplit(":", 1)
    else:
        name, tag = given, None
    fields = set(re.findall(r"{([^}]*)}", name)) - REGISTRY_FIELDS
    if fields:
        raise PushError(f"{given}: unknown field(s) {sorted(fields)}; known: {sorted(REGISTRY_FIELDS)}")
    return name, tag


__all__ = ["LATEST", "ComposeImage", "Destination", "PushError", "destinations", "index_destinations",
           "load_compose"]
