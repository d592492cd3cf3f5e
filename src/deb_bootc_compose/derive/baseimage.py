"""A base given as an image reference: ``base: {image: REF}`` with ``oci:DIR[:TAG]`` (read in place),
``oci-archive:FILE[:TAG]`` or ``docker://REF`` (copied by skopeo, digests preserved, into a directory of this
process that goes when it ends). What a compose directory keeps in its metadata, the image carries itself:
``/usr/lib/deb-bootc/manifest.yaml`` and ``lockfile.yaml`` (every image compose makes), its variant and OSTree
commit as labels. The image's layers are then used as a compose base's are."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import yaml

from deb_bootc_compose.derive.basecompose import BaseCompose, BaseError, BaseImage
from deb_bootc_compose.derive.fileindex import read_files
from deb_bootc_compose.errors import ComposeError
from deb_bootc_compose.imagelint.fetch import open_image
from deb_bootc_compose.lockfile import LockfileError
from deb_bootc_compose.lockfile import load as load_lockfile
from deb_bootc_compose.oci.errors import OciError
from deb_bootc_compose.oci.layout import DEBIAN_TO_OCI_ARCH

MANIFEST = "usr/lib/deb-bootc/manifest.yaml"
LOCKFILE = "usr/lib/deb-bootc/lockfile.yaml"
VARIANT_LABEL = "org.debian.bootc.variant"
COMMIT_LABEL = "org.debian.bootc.ostree-commit"
TRANSPORTS = ("oci:", "oci-archive:", "docker://")
MAX_RECORD = 16 << 20
_copies: list[Path] = []


def _cleanup() -> None:
    for path in _copies:
        shutil.rmtree(path, ignore_errors=True)


atexit.register(_cleanup)


def _local(ref: str, manifest_dir: Path) -> str:
    """``ref`` with a relative oci:/oci-archive: path made relative to the manifest's directory."""
    for transport in ("oci:", "oci-archive:"):
        if ref.startswith(transport) and not ref[len(transport):].startswith("/"):
            return transport + str(manifest_dir / ref[len(transport):])
    return ref


def _debian_arch(goarch: str) -> str:
    return next((deb for deb, (oci, _v) in DEBIAN_TO_OCI_ARCH.items() if oci == goarch), goarch)


def load_base_image(ref: str, manifest_dir: Path, variant: str | None, arches: list[str] | None,
                    suite: str | None) -> BaseCompose:
    """The base ``ref`` names, checked like a compose base (its variant, suite and arch)."""
    if not ref.startswith(TRANSPORTS):
        raise BaseError(f"{ref!r} is not an image reference this tool reads as a base: give oci:DIR[:TAG], "
                        "oci-archive:FILE[:TAG] or docker://REF (or base.compose: a compose directory)")
    spec = _local(ref, manifest_dir)
    scratch = Path(tempfile.mkdtemp(prefix="deb-bootc-base-", dir="/var/tmp"))
    _copies.append(scratch)
    arch = (arches or ["amd64"])[0]
    try:
        if spec.startswith("oci:"):
            image = open_image(spec, scratch, arch=DEBIAN_TO_OCI_ARCH.get(arch, (arch, None))[0])
        else:  # the layers must stay the very blobs: copied, not converted
            from deb_bootc_compose.imagelint.fetch import read_layout
            from deb_bootc_compose.registry.images import PushError
            from deb_bootc_compose.registry.skopeo import Skopeo

            host = spec.removeprefix("docker://").split("/", 1)[0] if spec.startswith("docker://") else "localhost"
            try:
                Skopeo(workdir=scratch / "skopeo").pull(spec, f"oci:{scratch / 'layout'}:base", host,
                                                        ["--preserve-digests"])
            except PushError as exc:
                raise BaseError(f"the base image {ref} cannot be read: {exc}") from None
            image = read_layout(scratch / "layout", "base", ref)
        files = read_files([layer.path for layer in image.layers], {MANIFEST, LOCKFILE}, MAX_RECORD)
    except (ComposeError, OciError) as exc:
        raise BaseError(f"the base image {ref}: {exc}") from None
    missing = [f"/{p}" for p in (MANIFEST, LOCKFILE) if p not in files]
    if missing:
        raise BaseError(f"the base image {ref} carries no {' and no '.join(missing)}: it was not made by "
                        "deb-bootc-compose (or by an older one); name its compose directory (base.compose) instead")
    layout = image.layers[0].path.parent.parent.parent
    have_variant = image.labels.get(VARIANT_LABEL, "")
    if variant is not None and have_variant and variant != have_variant:
        raise BaseError(f"the base image {ref} is variant {have_variant!r}, not {variant!r}: drop base.variant or "
                        "name that variant's image")
    image_arch = _debian_arch(image.architecture)
    if arches is not None and arches != [image_arch]:
        raise BaseError(f"the base image {ref} is for {image_arch} only, not {', '.join(arches)}: an image base "
                        "has one arch (derive for it, or use a compose directory with every arch)")
    record = scratch / "lockfile.yaml"
    record.write_bytes(files[LOCKFILE])
    try:
        lock = load_lockfile(record)
        data = yaml.safe_load(files[MANIFEST])
    except (LockfileError, yaml.YAMLError) as exc:
        raise BaseError(f"the base image {ref}: its /usr/lib/deb-bootc records do not read ({exc})") from None
    name = variant or have_variant or "base"
    if name not in lock.variants or not isinstance(data, dict):
        raise BaseError(f"the base image {ref}: its lockfile has no variant {name!r} (it has: "
                        f"{', '.join(lock.variants)})")
    if suite is not None and suite != lock.suite:
        raise BaseError(f"the base image {ref} is for suite {lock.suite!r} but this manifest says suite {suite!r}: "
                        f"a derived image has its base's suite")
    return BaseCompose(None, name, lock, data, {image_arch: image.labels.get(COMMIT_LABEL, "")},
                       {image_arch: BaseImage(layout, image.manifest_digest)}, image_ref=ref)
