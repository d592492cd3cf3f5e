"""The oci, checksums and metadata phases inside a real compose (the session compose of examples/minimal.yaml):
the bootc image podman runs lists exactly the packages packages.json names; the kernel layer; the labels;
productmd reads the metadata; sha256sum accepts the CHECKSUM file."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import tarfile
from pathlib import Path

import productmd.compose
import productmd.images
import pytest
from compose_helpers import SessionCompose

from debsandbox.commands import output

pytestmark = pytest.mark.integration


def oci_image(compose: SessionCompose) -> productmd.images.Image:
    images = productmd.compose.Compose(str(compose.topdir)).images
    [image] = [i for i in images["base"]["amd64"] if i.type == "bootable-container"]
    assert image.format == "ociarchive"
    return image


def layout_blob(layout: Path, digest: str) -> bytes:
    return (layout / "blobs" / "sha256" / digest.split(":", 1)[1]).read_bytes()


def test_compose_image_metadata_and_checksum(minimal_compose: SessionCompose) -> None:
    image = oci_image(minimal_compose)
    archive = minimal_compose.topdir / image.path
    assert archive.is_file() and image.size == archive.stat().st_size
    variant_dir = minimal_compose.topdir / "compose/base/amd64"
    done = subprocess.run(["sha256sum", "-c", "CHECKSUM"], cwd=variant_dir, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (
        f"SHA256 ({archive.relative_to(variant_dir)}) = {image.checksums['sha256']}"
        in (variant_dir / "CHECKSUM").read_text()
    )
    info = productmd.compose.Compose(str(minimal_compose.topdir)).info
    assert info.compose.id == minimal_compose.topdir.name
    assert info.release.version == "13"


def test_compose_image_labels_and_kernel_layer(minimal_compose: SessionCompose) -> None:
    layout = minimal_compose.topdir / "compose/base/amd64/oci/layout"
    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads(layout_blob(layout, index["manifests"][0]["digest"]))
    config = json.loads(layout_blob(layout, manifest["config"]["digest"]))
    labels = config["config"]["Labels"]
    kver = labels["ostree.linux"]
    assert labels["containers.bootc"] == "1" and labels["ostree.bootable"] == "1"
    assert "ostree.commit" not in labels
    repo = minimal_compose.target / "ostree/repo"
    commit = output(["ostree", f"--repo={repo}", "rev-parse", "debian-bootc/trixie/amd64/base"]).strip()
    assert labels["org.debian.bootc.ostree-commit"] == commit
    [kernel] = [x for x in manifest["layers"] if x["annotations"]["org.debian.bootc.layer"] == "kernel"]
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layout_blob(layout, kernel["digest"])))) as tar:
        names = set(tar.getnames())
    assert {f"usr/lib/modules/{kver}/vmlinuz", f"usr/lib/modules/{kver}/initramfs.img"} <= names
    assert not any(n.startswith("usr/bin/") for n in names)
    assert len(manifest["layers"]) <= 64


def test_podman_lists_the_packages_of_packages_json(minimal_compose: SessionCompose) -> None:
    archive = minimal_compose.topdir / oci_image(minimal_compose).path
    packages = json.loads((minimal_compose.topdir / "metadata/packages.json").read_text())
    expected = {f"{r['name']}" for r in packages["payload"]["packages"]["base"]["amd64"]}
    image_id = output(["podman", "pull", "-q", f"oci-archive:{archive}"]).strip().splitlines()[-1]
    try:
        listing = output(
            [
                "podman", "run", "--rm", "--runtime", "runc", "--cgroup-manager=cgroupfs",
                "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", "--network=none",
                image_id, "dpkg-query", "-W", "-f", "${db:Status-Abbrev} ${Package}\\n",
            ]
        )  # fmt: skip
    finally:
        subprocess.run(["podman", "rmi", "--force", image_id], capture_output=True, check=False)
    installed = {line.split()[1] for line in listing.splitlines() if line.startswith("ii ")}
    assert installed == expected
