"""OCI image layout: blobs, config, manifest, index.json, and the deterministic ``.oci-archive``."""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deb_bootc_compose.oci.tarlayer import LayerBlob

MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME = "org.opencontainers.image.ref.name"

# Debian architecture → OCI (Go) architecture and variant.
DEBIAN_TO_OCI_ARCH: dict[str, tuple[str, str | None]] = {
    "amd64": ("amd64", None),
    "arm64": ("arm64", "v8"),
    "armhf": ("arm", "v7"),
    "armel": ("arm", "v5"),
    "i386": ("386", None),
    "ppc64el": ("ppc64le", None),
    "s390x": ("s390x", None),
    "riscv64": ("riscv64", None),
    "mips64el": ("mips64le", None),
    "loong64": ("loong64", None),
}


def oci_arch(debian_arch: str) -> tuple[str, str | None]:
    try:
        return DEBIAN_TO_OCI_ARCH[debian_arch]
    except KeyError:
        known = ", ".join(sorted(DEBIAN_TO_OCI_ARCH))
        raise ValueError(
            f"no OCI architecture known for Debian architecture {debian_arch!r} (known: {known})"
        ) from None


def canonical_json(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def rfc3339(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_blob(blobs: Path, data: bytes) -> tuple[str, int]:
    hex_digest = hashlib.sha256(data).hexdigest()
    blobs.mkdir(parents=True, exist_ok=True)
    path = blobs / hex_digest
    if not path.exists():
        tmp = blobs / f".{hex_digest}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return f"sha256:{hex_digest}", len(data)


def image_config(
    *,
    arch: str,
    layers: Sequence[LayerBlob],
    history: Sequence[str],
    labels: dict[str, str],
    created: str,
    cmd: list[str] | None,
) -> dict[str, Any]:
    goarch, variant = oci_arch(arch)
    config: dict[str, Any] = {
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        "Labels": dict(sorted(labels.items())),
    }
    if cmd:
        config["Cmd"] = cmd
    data: dict[str, Any] = {
        "architecture": goarch,
        "os": "linux",
        "created": created,
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        "history": [{"created": created, "created_by": line} for line in history],
    }
    if variant:
        data["variant"] = variant
    return data


def write_layout(
    layout_dir: Path,
    *,
    config: dict[str, Any],
    layers: Sequence[LayerBlob],
    layer_annotations: Sequence[dict[str, str]],
    ref_name: str,
    annotations: dict[str, str],
) -> tuple[str, str, int]:
    """Write config, manifest and index into a layout whose layer blobs are already in place.

    Returns (manifest digest, config digest, manifest size).
    """
    blobs = layout_dir / "blobs" / "sha256"
    config_digest, config_size = write_blob(blobs, canonical_json(config))
    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": {"mediaType": MEDIA_CONFIG, "digest": config_digest, "size": config_size},
        "layers": [
            {"mediaType": MEDIA_LAYER_GZIP, "digest": layer.digest, "size": layer.size, "annotations": notes}
            for layer, notes in zip(layers, layer_annotations, strict=True)
        ],
        "annotations": dict(sorted(annotations.items())),
    }
    manifest_digest, manifest_size = write_blob(blobs, canonical_json(manifest))
    index = {
        "schemaVersion": 2,
        "mediaType": MEDIA_INDEX,
        "manifests": [
            {
                "mediaType": MEDIA_MANIFEST,
                "digest": manifest_digest,
                "size": manifest_size,
                "annotations": {REF_NAME: ref_name},
            }
        ],
    }
    (layout_dir / "oci-layout").write_bytes(canonical_json({"imageLayoutVersion": "1.0.0"}))
    (layout_dir / "index.json").write_bytes(canonical_json(index))
    return manifest_digest, config_digest, manifest_size


def write_archive(layout_dir: Path, archive: Path, source_date_epoch: int) -> None:
    """Tar the layout (oci-layout, index.json, blobs/sha256/*) deterministically into ``archive``."""
    names = ["oci-layout", "index.json", "blobs", "blobs/sha256"]
    names += sorted(f"blobs/sha256/{n}" for n in os.listdir(layout_dir / "blobs" / "sha256") if not n.startswith("."))
    tmp = archive.with_name(f".{archive.name}.tmp")
    with tarfile.TarFile(tmp, "w", format=tarfile.PAX_FORMAT, copybufsize=1 << 20) as tar:
        for name in names:
            path = layout_dir / name
            info = tarfile.TarInfo(name)
            info.mtime = source_date_epoch
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if path.is_dir():
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            else:
                info.mode = 0o644
                info.size = path.stat().st_size
                with open(path, "rb") as fh:
                    tar.addfile(info, fh)
    os.replace(tmp, archive)
