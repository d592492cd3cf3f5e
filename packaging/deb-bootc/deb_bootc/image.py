"""OCI images from a registry: ``skopeo copy`` into a layout kept under /var/lib/deb-bootc (blobs it already
holds are not fetched again; skopeo verifies the image against /etc/containers/policy.json), then the
image's layers applied in order to a tree that is committed to the sysroot's repository."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass

from . import layers, parse
from .errors import ClientError, RefusedError, UsageError
from .runner import last_line, run

STORE = "images"  # under the client's state directory: one OCI layout, blobs shared by every image followed
LAYER_TYPES = ("application/vnd.oci.image.layer.v1.tar", "application/vnd.oci.image.layer.v1.tar+gzip",
               "application/vnd.docker.image.rootfs.diff.tar.gzip")
REFERENCE = re.compile(r"^docker://([a-z0-9]([a-z0-9.\-]*[a-z0-9])?(:[0-9]{1,5})?(/[a-z0-9._\-]+)+)"
                       r"(:[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}|@sha256:[0-9a-f]{64})$")
# a local OCI layout (an image carried on a disk, or made by deb-bootc-compose): oci:/ABSOLUTE/PATH:TAG
LOCAL_REFERENCE = re.compile(r"^oci:/[A-Za-z0-9._/\-]+:[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$")
VERSION_LABEL = "org.opencontainers.image.version"
TRANSPORTS = ("docker://", "oci:")


@dataclass
class Image:
    reference: str  # docker://HOST/NAME:TAG (what the machine follows)
    digest: str  # the manifest digest
    layers: list[str]  # blob paths, in order
    labels: dict[str, str]


def check_reference(ref: str) -> str:
    if not (REFERENCE.match(ref) or (LOCAL_REFERENCE.match(ref) and "/../" not in ref + "/")):
        raise UsageError(f"{ref!r} is not an image reference this client follows: use docker://HOST/NAME:TAG "
                         "(or docker://HOST/NAME@sha256:DIGEST, or oci:/PATH/TO/LAYOUT:TAG)")
    return ref


def layout_tag(reference: str) -> str:
    """The tag under which the store keeps ``reference`` (one per followed reference)."""
    return "ref-" + hashlib.sha256(reference.encode()).hexdigest()[:32]


def local_ref(reference: str) -> str:
    """The OSTree ref the imported commits of ``reference`` live on."""
    slug = re.sub(r"[^A-Za-z0-9._\-]+", "-", reference.removeprefix("docker://")).strip("-.")
    return f"deb-bootc/image/{slug[:180]}"


def pull(reference: str, store: str) -> str:
    """Copy the image into the store (the policy decides whether it may be used); returns the store tag."""
    check_reference(reference)
    os.makedirs(store, mode=0o700, exist_ok=True)
    tag = layout_tag(reference)
    # --remove-signatures: the layout cannot hold them; skopeo has verified them against the policy first
    res = run(["skopeo", "copy", "--remove-signatures", reference, f"oci:{store}:{tag}"], quiet=False, check=False)
    if res.rc != 0:
        msg = last_line(res.err) or f"exit code {res.rc}"
        if parse.is_signature_error(res.err):
            raise RefusedError(f"{reference} refused by /etc/containers/policy.json: {msg}; nothing was changed")
        raise ClientError(f"cannot fetch {reference}: {msg}")
    return tag


def _blob(store: str, digest: str) -> str:
    algo, _, hexd = digest.partition(":")
    if algo != "sha256" or not re.fullmatch(r"[0-9a-f]{64}", hexd):
        raise ClientError(f"{store}: unsupported digest {digest!r}")
    return os.path.join(store, "blobs", algo, hexd)


def _json(path: str, what: str) -> dict[str, object]:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError) as exc:
        raise ClientError(f"{what} ({path}) is unreadable: {exc}") from None
    if not isinstance(data, dict):
        raise ClientError(f"{what} ({path}) is not a JSON object")
    return data


def read(store: str, tag: str, reference: str) -> Image:
    """The manifest, config labels and layer files of the image tagged ``tag`` in the layout ``store``."""
    index = _json(os.path.join(store, "index.json"), "the OCI layout's index")
    manifests = index.get("manifests")
    found = [m for m in manifests if isinstance(m, dict)
             and m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag] if isinstance(
        manifests, list) else []
    if not found:
        raise ClientError(f"{store} has no image tagged {tag}")
    digest = str(found[-1]["digest"])
    manifest = _json(_blob(store, digest), f"the manifest of {reference}")
    config_desc = manifest.get("config")
    labels: dict[str, str] = {}
    if isinstance(config_desc, dict):
        config = _json(_blob(store, str(config_desc["digest"])), f"the config of {reference}")
        cfg = config.get("config")
        if isinstance(cfg, dict) and isinstance(cfg.get("Labels"), dict):
            labels = {str(k): str(v) for k, v in cfg["Labels"].items()}
    paths = []
    descs = manifest.get("layers")
    for desc in descs if isinstance(descs, list) else []:
        media = str(desc.get("mediaType", ""))
        if media not in LAYER_TYPES:
            raise ClientError(f"{reference}: layer {desc.get('digest')} has media type {media!r}; this client "
                              f"applies {', '.join(LAYER_TYPES)}")
        paths.append(_blob(store, str(desc["digest"])))
    if not paths:
        raise ClientError(f"{reference} has no layers")
    return Image(reference=reference, digest=digest, layers=paths, labels=labels)


def unpack(img: Image, workdir: str) -> str:
    """Apply the layers in order to a fresh tree under ``workdir``; ``/etc`` moves to ``/usr/etc``."""
    root = tempfile.mkdtemp(prefix="rootfs-", dir=workdir)
    os.chmod(root, 0o755)
    for path in img.layers:
        layers.apply_layer(path, root)
    etc, usr_etc = os.path.join(root, "etc"), os.path.join(root, "usr", "etc")
    if os.path.isdir(etc) and not os.path.islink(etc):
        if os.path.lexists(usr_etc):
            raise ClientError(f"{img.reference} has both /etc and /usr/etc: not a bootable container image")
        os.rename(etc, usr_etc)
    if not any(os.path.isfile(os.path.join(root, "usr/lib/modules", k, "vmlinuz"))
               for k in (os.listdir(os.path.join(root, "usr/lib/modules"))
                         if os.path.isdir(os.path.join(root, "usr/lib/modules")) else [])):
        shutil.rmtree(root, ignore_errors=True)
        raise ClientError(f"{img.reference} is not a bootable image: no kernel at /usr/lib/modules/VERSION/vmlinuz")
    return root
