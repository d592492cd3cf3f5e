"""Where ``lint IMAGE`` reads an image from.

* a compose directory: its variant's OCI layout (``compose/VARIANT/ARCH/oci/layout``), read in place;
* ``oci:DIR[:TAG]``: the layout, read in place (the tag may be left out when the layout holds one image);
* ``oci-archive:FILE[:TAG]``, ``containers-storage:REF`` (also ``containers-storage:[DRIVER@ROOT+RUNROOT]REF``)
  and ``docker://REF``: copied by skopeo into a layout under the scratch directory first (a private policy:
  lint reads, it verifies no signature). :func:`copy_to_layout` is the one way the project fetches an image
  it reads: ``install-to-disk`` and ``boot-test`` use it too.

Every blob read is checked against its descriptor's size and digest; an image bigger than the limits is
refused before anything is read (``docker://``: before anything is downloaded).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deb_bootc_compose.errors import ComposeError
from deb_bootc_compose.paths import ComposePaths
from deb_bootc_compose.registry.images import PushError
from deb_bootc_compose.registry.skopeo import Skopeo

REF_NAME = "org.opencontainers.image.ref.name"
MEDIA_INDEX = ("application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json")
LAYER_MEDIA = {
    "application/vnd.oci.image.layer.v1.tar": "",
    "application/vnd.oci.image.layer.v1.tar+gzip": "gzip",
    "application/vnd.docker.image.rootfs.diff.tar.gzip": "gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd": "zstd",
}
COPIED = ("oci-archive:", "containers-storage:", "docker://")
TRANSPORTS = ("oci:", *COPIED)
COPIED_TAG = "image"  # the tag of the image in the layout copy_to_layout writes
# a registry reference: [HOST[:PORT]/]PATH[:TAG][@sha256:DIGEST] (the distribution spec's grammar, lower-case path)
_COMPONENT = r"[a-z0-9]+(?:[._-]+[a-z0-9]+)*"
DOCKER_REF = re.compile(rf"^(?:[A-Za-z0-9.-]+(?::[0-9]+)?/)?{_COMPONENT}(?:/{_COMPONENT})*"
                        r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$")
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
MAX_JSON = 4 << 20


class ImageError(ComposeError):
    """The image cannot be read (missing, not an OCI image, unreachable, too big); the message says why."""


@dataclass(frozen=True)
class Limits:
    """Bounds on what lint reads from an image it does not trust."""

    image_bytes: int = 16 << 30  # the compressed layers together
    layers: int = 512
    unpacked_bytes: int = 64 << 30  # the tar streams together, decompressed
    entries: int = 4_000_000
    content_bytes: int = 2 << 30  # bytes lint writes into its skeleton tree (the files the rules read)


@dataclass(frozen=True)
class Layer:
    digest: str
    media_type: str
    size: int
    path: Path

    @property
    def compression(self) -> str:
        return LAYER_MEDIA[self.media_type]


@dataclass
class Image:
    name: str  # as the user gave it
    manifest_digest: str
    layers: list[Layer]
    labels: dict[str, str] = field(default_factory=dict)
    architecture: str = ""


def _json(path: Path, what: str) -> Any:
    try:
        if path.stat().st_size > MAX_JSON:
            raise ImageError(f"{what} ({path}) is bigger than {MAX_JSON} bytes: not an image's JSON")
        return json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ImageError(f"{what} ({path}) is unreadable: {exc}") from None


def _blob(layout: Path, digest: object, what: str) -> Path:
    if not isinstance(digest, str) or not DIGEST.match(digest):
        raise ImageError(f"{what}: unsupported digest {digest!r} (sha256:<64 hex> expected)")
    return layout / "blobs" / "sha256" / digest.split(":", 1)[1]


def _pick(manifests: list[Any], tag: str | None, arch: str, where: str) -> dict[str, Any]:
    """The index entry for ``tag`` (or the only image), then, in an image index, the one for ``arch``."""
    entries = [m for m in manifests if isinstance(m, dict)]
    if tag is not None:
        chosen = [m for m in entries if (m.get("annotations") or {}).get(REF_NAME) == tag]
        if not chosen:
            tags = sorted({str((m.get("annotations") or {}).get(REF_NAME)) for m in entries} - {"None"})
            raise ImageError(f"{where}: no tag {tag!r} (tags: {', '.join(tags) or 'none'})")
        entries = chosen
    by_arch = [m for m in entries if (m.get("platform") or {}).get("architecture") in (arch, None)]
    if len(entries) > 1 and len(by_arch) == 1:
        return by_arch[0]
    if len(entries) != 1:
        tags = sorted({str((m.get("annotations") or {}).get(REF_NAME)) for m in entries})
        raise ImageError(f"{where} holds {len(entries)} images (tags: {', '.join(tags)}); name one as oci:DIR:TAG")
    return entries[0]


def read_layout(layout: Path, tag: str | None, name: str, *, arch: str = "amd64", limits: Limits = Limits()
                ) -> Image:
    """The image tagged ``tag`` (or the only one) of an OCI layout, its layers checked to be there."""
    if not (layout / "index.json").is_file():
        raise ImageError(f"{name}: {layout} is not an OCI image layout (no index.json)")
    desc = _pick(_json(layout / "index.json", f"{name}: index.json").get("manifests") or [], tag, arch, name)
    for _depth in range(4):  # an image index (several platforms) may point at another index
        manifest = _json(_blob(layout, desc.get("digest"), name), f"{name}: manifest")
        if desc.get("mediaType") not in MEDIA_INDEX and "manifests" not in manifest:
            break
        desc = _pick(manifest.get("manifests") or [], None, arch, f"{name} (image index)")
    else:
        raise ImageError(f"{name}: image indexes nested too deep")
    config = _json(_blob(layout, (manifest.get("config") or {}).get("digest"), name), f"{name}: config")
    layers = []
    descs = manifest.get("layers") or []
    if not descs:
        raise ImageError(f"{name} has no layers")
    if len(descs) > limits.layers:
        raise ImageError(f"{name} has {len(descs)} layers, more than the {limits.layers} lint reads")
    for d in descs:
        media = str(d.get("mediaType", ""))
        if media not in LAYER_MEDIA:
            raise ImageError(f"{name}: layer {d.get('digest')} has media type {media!r}; lint reads "
                             f"{', '.join(LAYER_MEDIA)}")
        path = _blob(layout, d.get("digest"), name)
        if not path.is_file():
            raise ImageError(f"{name}: layer {d.get('digest')} is missing from {layout}")
        layers.append(Layer(str(d["digest"]), media, int(d.get("size", -1)), path))
    total = sum(x.size for x in layers)
    if total > limits.image_bytes:
        raise ImageError(f"{name}: its layers hold {total} bytes, more than the {limits.image_bytes} lint reads")
    cfg = config.get("config") or {}
    labels = {str(k): str(v) for k, v in (cfg.get("Labels") or {}).items()}
    return Image(name, str(desc.get("digest")), layers, labels, str(config.get("architecture", "")))


def split_tag(rest: str) -> tuple[Path, str | None]:
    """``DIR[:TAG]``: the tag is what follows the last colon when what precedes it exists."""
    if ":" in rest:
        head, tail = rest.rsplit(":", 1)
        if "/" not in tail and Path(head).exists():
            return Path(head), tail
    return Path(rest), None


def _precheck(skopeo: Skopeo, ref: str, host: str, limits: Limits) -> None:
    """Refuse a registry image whose manifest says it is too big, before downloading it."""
    raw = skopeo.inspect_raw(ref, host)
    try:
        manifest = json.loads(raw)
    except ValueError:
        return  # skopeo copy will say what is wrong
    layers = manifest.get("layers") if isinstance(manifest, dict) else None
    if isinstance(layers, list):
        total = sum(int(x.get("size", 0)) for x in layers if isinstance(x, dict))
        if len(layers) > limits.layers or total > limits.image_bytes:
            raise ImageError(f"{ref}: {len(layers)} layers, {total} bytes: more than lint reads "
                             f"({limits.layers} layers, {limits.image_bytes} bytes)")


def check_reference(spec: str) -> None:
    """Refuse a reference skopeo would misread, before anything runs: an unknown transport, an empty or
    malformed name, an archive that is not there."""
    if not spec.startswith(TRANSPORTS):
        raise ImageError(f"{spec}: not an image reference: give oci:DIR[:TAG], oci-archive:FILE[:TAG], "
                         "containers-storage:REF or docker://REF")
    transport, rest = (("docker://", spec[len("docker://"):]) if spec.startswith("docker://")
                       else (spec.split(":", 1)[0] + ":", spec.split(":", 1)[1]))
    if not rest.strip():
        raise ImageError(f"{spec}: the reference names no image (e.g. {transport}"
                         f"{'registry.example.org/debian-atomic/base:13' if transport == 'docker://' else 'NAME'})")
    if transport == "docker://" and not DOCKER_REF.match(rest):
        raise ImageError(f"{spec}: not a registry reference: expected docker://[HOST[:PORT]/]PATH[:TAG][@DIGEST] "
                         "with a lower-case path, e.g. docker://registry.example.org/debian-atomic/base:13")
    if transport == "oci-archive:" and not split_tag(rest)[0].is_file():
        raise ImageError(f"{spec}: no such file")
    if transport == "oci:" and not split_tag(rest)[0].is_dir():
        raise ImageError(f"{spec}: {split_tag(rest)[0]} is not a directory (an OCI image layout)")


def copy_to_layout(spec: str, scratch: Path, *, log: Path | None, tls_verify: bool = True,
                   cert_dir: Path | None = None, limits: Limits = Limits()) -> Path:
    """``skopeo copy SPEC oci:SCRATCH/layout:image`` (tag :data:`COPIED_TAG`, layers decompressed); the layout's
    path. ImageError for a bad reference, a missing image, an unreachable registry, an image too big."""
    check_reference(spec)
    sk = Skopeo(workdir=scratch / "skopeo", log=log, cert_dir=cert_dir, tls_verify=tls_verify)
    host = spec.removeprefix("docker://").split("/", 1)[0] if spec.startswith("docker://") else "localhost"
    extra = ["--dest-decompress"]  # plain tar layers: read once, not decompressed again
    if spec.startswith("docker://"):
        extra.append(f"--src-tls-verify={'true' if tls_verify else 'false'}")
        if cert_dir is not None:
            extra += ["--src-cert-dir", str(cert_dir)]
        try:
            _precheck(sk, spec, host, limits)
        except PushError as exc:
            raise ImageError(str(exc)) from None
    layout = scratch / "layout"
    try:
        sk.pull(spec, f"oci:{layout}:{COPIED_TAG}", host, extra)
    except PushError as exc:
        raise ImageError(str(exc)) from None
    return layout


def open_image(spec: str, scratch: Path, *, variant: str = "base", arch: str = "amd64", log: Path | None = None,
               tls_verify: bool = True, cert_dir: Path | None = None, limits: Limits = Limits()) -> Image:
    """The image ``spec`` names (see the module's doc), its blobs on this machine."""
    if spec.startswith("oci:"):
        check_reference(spec)
        path, tag = split_tag(spec[len("oci:"):])
        return read_layout(path, tag, spec, arch=arch, limits=limits)
    if spec.startswith(COPIED):
        return read_layout(copy_to_layout(spec, scratch, log=log, tls_verify=tls_verify, cert_dir=cert_dir,
                                          limits=limits), COPIED_TAG, spec, arch=arch, limits=limits)
    path = Path(spec)
    paths = ComposePaths.at(path)
    if path.is_dir() and paths.status.is_file():
        layout = paths.oci_dir(variant, arch) / "layout"
        if not layout.is_dir():
            have = sorted(f"{p.parent.parent.name}/{p.parent.name}" for p in paths.deliverables.glob("*/*/oci"))
            raise ImageError(f"{spec} is a compose without an OCI image for {variant}/{arch} (it has: "
                             f"{', '.join(have) or 'none'}); choose with --variant/--arch")
        return read_layout(layout, None, f"{spec} ({variant}/{arch})", arch=arch, limits=limits)
    raise ImageError(f"{spec}: not an image: give oci:DIR[:TAG], oci-archive:FILE[:TAG], containers-storage:REF, "
                     "docker://REF or a compose directory")
