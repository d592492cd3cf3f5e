"""The image index of a variant composed for several arches: an OCI layout whose tag names an image index (one
entry per arch, with its platform) over the arch images the compose wrote. The arch images' manifests and
configs are copied in (small); their layers are links to the compose's blobs (``skopeo copy --all`` finds them
in the registry already, pushed under the arch tags just before, and reads none of them)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from deb_bootc_compose.oci.layout import canonical_json, oci_arch
from deb_bootc_compose.registry.images import ComposeImage, PushError

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MAX_MANIFEST = 4 * 1024 * 1024


def _read_blob(layout: Path, digest: str) -> bytes:
    path = layout / "blobs" / "sha256" / digest.split(":", 1)[1]
    try:
        if path.is_symlink() or path.stat().st_size > MAX_MANIFEST:
            raise PushError(f"{path}: a link or larger than {MAX_MANIFEST} bytes where a manifest or config is")
        data = path.read_bytes()
    except OSError as exc:
        raise PushError(f"{path}: {exc.strerror}") from None
    if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
        raise PushError(f"{path} does not hash to {digest}: the compose's OCI layout is damaged")
    return data


def write_index_layout(out: Path, images: list[ComposeImage], ref_name: str) -> str:
    """Write the layout at ``out``; the index's digest."""
    blobs = out / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    entries = []
    for img in images:
        raw = _read_blob(img.layout, img.digest)
        try:
            manifest = json.loads(raw)
            config = str(manifest["config"]["digest"])
            layers = [str(layer["digest"]) for layer in manifest["layers"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise PushError(f"{img.layout}: the image manifest {img.digest} is not readable ({exc!r})") from None
        for digest, data in ((img.digest, raw), (config, _read_blob(img.layout, config))):
            (blobs / digest.split(":", 1)[1]).write_bytes(data)
        for digest in layers:
            target = blobs / digest.split(":", 1)[1]
            if not target.exists():
                os.symlink(os.path.realpath(img.layout / "blobs" / "sha256" / digest.split(":", 1)[1]), target)
        goarch, variant = oci_arch(img.arch)
        platform = {"architecture": goarch, "os": "linux", **({"variant": variant} if variant else {})}
        entries.append({"mediaType": manifest.get("mediaType", OCI_MANIFEST), "digest": img.digest,
                        "size": len(raw), "platform": platform})
    index = canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
    digest = "sha256:" + hashlib.sha256(index).hexdigest()
    (blobs / digest.split(":", 1)[1]).write_bytes(index)
    (out / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (out / "index.json").write_bytes(canonical_json({"schemaVersion": 2, "manifests": [
        {"mediaType": OCI_INDEX, "digest": digest, "size": len(index),
         "annotations": {"org.opencontainers.image.ref.name": ref_name}}]}))
    return digest


__all__ = ["write_index_layout"]
