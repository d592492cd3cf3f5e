"""Sigstore signatures as cosign stores them in a registry: an OCI image tagged ``sha256-<hex>.sig`` in the
image's repository, one layer per signature (media type ``application/vnd.dev.cosign.simplesigning.v1+json``:
the payload; annotation ``dev.cosignproject.cosign/signature``: the base64 ECDSA signature of it).

The payload is containers/image's sigstore payload (``{"critical": {"identity": {"docker-reference": REF},
"image": {"docker-manifest-digest": DIGEST}, "type": "cosign container image signature"}, "optional":
{...}}``), which ``sigstoreSigned`` policy requirements verify. Bookworm's skopeo and podman are built with
sigstore disabled (they answer "Debian-local change: sigstore disabled" to signing and to verifying), so
the signature is made here, with the key ``deb-bootc-compose keygen`` wrote, and pushed with skopeo.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

SIGNATURE_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
PAYLOAD_TYPE = "cosign container image signature"


def attachment_tag(digest: str) -> str:
    """``sha256:abc…`` → ``sha256-abc….sig`` (where containers/image and cosign look)."""
    return digest.replace(":", "-", 1) + ".sig"


def payload(docker_reference: str, digest: str, timestamp: int | None = None) -> bytes:
    doc = {
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": digest},
            "type": PAYLOAD_TYPE,
        },
        "optional": {"creator": "deb-bootc-compose", "timestamp": int(time.time() if timestamp is None else timestamp)},
    }
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def sign(key: ec.EllipticCurvePrivateKey, data: bytes) -> str:
    """The base64 ASN.1 ECDSA-SHA256 signature of ``data`` (what sigstore's verifier expects)."""
    return base64.b64encode(key.sign(data, ec.ECDSA(hashes.SHA256()))).decode("ascii")


def _compact(doc: object) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def write_layout(layout: Path, signed: list[tuple[bytes, str]], ref_name: str = "sig") -> str:
    """An OCI layout holding the signature image (one layer per (payload, signature)); its manifest digest."""
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)

    def blob(data: bytes) -> dict[str, object]:
        hexdigest = hashlib.sha256(data).hexdigest()
        (blobs / hexdigest).write_bytes(data)
        return {"digest": f"sha256:{hexdigest}", "size": len(data)}

    layers = [{"mediaType": SIGNATURE_MEDIA_TYPE, **blob(p), "annotations": {SIGNATURE_ANNOTATION: s}}
              for p, s in signed]
    config = {"architecture": "", "created": "0001-01-01T00:00:00Z", "history": [{"created": "0001-01-01T00:00:00Z"}],
              "os": "", "rootfs": {"type": "layers", "diff_ids": [layer["digest"] for layer in layers]},
              "config": {}}
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, **blob(_compact(config))}, "layers": layers}
    entry = blob(_compact(manifest))
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    index = {"schemaVersion": 2, "manifests": [{"mediaType": OCI_MANIFEST, **entry,
                                                "annotations": {"org.opencontainers.image.ref.name": ref_name}}]}
    (layout / "index.json").write_bytes(_compact(index))
    return str(entry["digest"])


__all__ = ["SIGNATURE_ANNOTATION", "SIGNATURE_MEDIA_TYPE", "attachment_tag", "payload", "sign", "write_layout"]
