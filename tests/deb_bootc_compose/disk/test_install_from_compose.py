"""``install-to-disk COMPOSE_DIR`` and ``install-to-disk oci:LAYOUT:TAG`` on a full real compose (the session's
compose of examples/minimal.yaml). From the directory, the disk holds a deployment of exactly the commit the
compose recorded and follows the compose repository's ref; from the compose's OCI layout, the image's layers
are deployed. Both boot through GRUB with that compose's kernel. Inspected without mounting (sfdisk, debugfs,
mtools)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from compose_helpers import SessionCompose
from diskinspect import DiskImage, sh

from deb_bootc_compose.cli import main as compose_main
from deb_bootc_compose.disk import source

pytestmark = pytest.mark.integration


def kernel_version(compose: Path, commit: str) -> str:
    listing = sh("ostree", f"--repo={compose.parent / 'ostree' / 'repo'}", "ls", commit, "/usr/lib/modules")
    return next(line.split("/")[-1] for line in listing.splitlines() if "/usr/lib/modules/" in line)


def test_install_a_compose_directory_to_qcow2(minimal_compose: SessionCompose, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    compose = minimal_compose.topdir
    recorded = source.from_compose(compose)
    disk = tmp_path / "installed.qcow2"
    rc = compose_main(["install-to-disk", str(compose), str(disk), "--free-space", "256MiB",
                       "--stateroot", "mine", "--karg", "quiet"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert out.strip().splitlines()[-1] == str(disk)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["installed.qcow2", "installed.qcow2.install.log"]
    info = json.loads(sh("qemu-img", "info", "--output=json", str(disk)))
    assert info["format"] == "qcow2" and info["virtual-size"] < 3 << 30  # content + 256 MiB, not 10 GB

    raw = tmp_path / "inspect.raw"  # debugfs and mtools read raw images
    sh("qemu-img", "convert", "-O", "raw", str(disk), str(raw))
    image = DiskImage(raw)
    assert image.names == ["EFI-SYSTEM", "boot", "root"]
    assert "BOOTX64.EFI" in image.esp_listing("/EFI/BOOT").upper()
    debugfs = image.debugfs

    # exactly the compose's commit, deployed under the stateroot asked for
    deploy = f"/ostree/deploy/mine/deploy/{recorded.commit}.0"
    assert "usr" in debugfs("root", f"ls {deploy}").split()
    # the installed system follows the ref on a remote without a URL: the manifest has no update section, and
    # the build host's repository (file://) is never an image's update source
    config = debugfs("root", "cat /ostree/repo/config")
    assert '[remote "mine"]' in config and "\nurl=\n" in config and "file://" not in config
    assert recorded.remote_url is None
    origin = debugfs("root", f"cat {deploy}.origin")
    assert f"refspec=mine:{recorded.ref}" in origin
    assert debugfs("root", f"cat /ostree/repo/refs/remotes/mine/{recorded.ref}").strip() == recorded.commit
    # GRUB boots that deployment with this compose's kernel and the asked-for argument
    cfg = debugfs("boot", "cat /loader/grub.cfg")
    assert f"vmlinuz-{kernel_version(compose, recorded.commit)}" in cfg and " quiet ostree=/ostree/boot.1/mine/" in cfg
    fstab = debugfs("root", f"cat {deploy}/etc/fstab")
    assert "LABEL=boot /boot ext4" in fstab and "LABEL=EFI-SYSTEM /boot/efi vfat" in fstab


def test_install_the_compose_oci_layout_to_raw(minimal_compose: SessionCompose, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """The compose's own bootc OCI image as an ``oci:DIR:TAG`` layout (what a registry would serve): its layers
    are unpacked, committed again and installed; the remote asked for is set, since an image has none."""
    compose = minimal_compose.topdir
    layout = compose / "compose/base/amd64/oci/layout"
    recorded = source.from_compose(compose)
    remote_url = f"file://{compose.parent.resolve()}/ostree/repo"  # asked for explicitly
    disk = tmp_path / "from-oci.raw"
    rc = compose_main(["install-to-disk", f"oci:{layout}:nope", str(disk)])
    assert rc == 2 and "no tag 'nope'" in capsys.readouterr().err and not disk.exists()
    rc = compose_main(["install-to-disk", f"oci:{layout}:13", str(disk), "--free-space", "256MiB",
                       "--remote-url", remote_url])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert out.strip().splitlines()[-1] == str(disk)
    debugfs = DiskImage(disk).debugfs

    deployments = [n for n in debugfs("root", "ls -p /ostree/deploy/debian/deploy").split("/")
                   if n.endswith(".0") and len(n) == 66]
    assert len(deployments) == 1, deployments
    deploy = f"/ostree/deploy/debian/deploy/{deployments[0]}"
    # the image's /etc (top level in the container form) became the deployment's /etc
    assert debugfs("root", f"cat {deploy}/etc/passwd").startswith("root:x:0:0:")
    assert "tmpfiles.d" in debugfs("root", f"ls {deploy}/usr/etc")  # ostree keeps the defaults in /usr/etc
    assert f"url={remote_url}" in debugfs("root", "cat /ostree/repo/config")
    cfg = debugfs("boot", "cat /loader/grub.cfg")
    assert "ostree=/ostree/boot.1/debian/" in cfg and f"vmlinuz-{kernel_version(compose, recorded.commit)}" in cfg
    assert sorted(p.name for p in tmp_path.iterdir()) == ["from-oci.raw", "from-oci.raw.install.log"]
    assert json.loads((layout / "index.json").read_text())["manifests"][0]["annotations"] == {
        "org.opencontainers.image.ref.name": "13"}  # the compose's layout was only read
