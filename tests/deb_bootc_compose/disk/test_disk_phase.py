"""The disk phase for real: a fixture OSTree commit becomes raw and qcow2 images; inspect them without mounting."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import imagefixtures
import pytest
from diskinspect import DiskImage, sh

from deb_bootc_compose.disk.layout import MiB
from deb_bootc_compose.errors import ComposeError
from deb_bootc_compose.phases.disk import DiskPhase

pytestmark = pytest.mark.integration


def test_disk_phase_builds_bootable_layout(compose_v1: imagefixtures.FixtureCompose) -> None:
    ctx = compose_v1.ctx
    images = ctx.paths.images_dir("base", "amd64")
    raw = images / f"{ctx.compose_id}-base-amd64.raw"
    qcow2 = images / f"{ctx.compose_id}-base-amd64.qcow2"
    assert sorted(p.name for p in images.iterdir()) == sorted([raw.name, qcow2.name])  # no partial files
    records = {r.format: r for r in ctx.variants[0].images}
    assert set(records) == {"raw", "qcow2"} and records["raw"].type == "raw" and records["qcow2"].type == "qcow2"
    assert records["qcow2"].size == qcow2.stat().st_size
    info = json.loads(sh("qemu-img", "info", "--output=json", str(qcow2)))
    assert info["virtual-size"] == raw.stat().st_size == records["raw"].extra["virtual_size"]
    # sized to content + 1 GiB free, not a fixed 10 GB
    assert raw.stat().st_size < 3 * 1024 * MiB

    disk = DiskImage(raw)
    assert disk.names == ["EFI-SYSTEM", "boot", "root"]
    assert "BOOTX64.EFI" in disk.esp_listing("/EFI/BOOT").upper()

    cfg = disk.debugfs("boot", "cat /loader/grub.cfg")
    assert "menuentry" in cfg and "root=LABEL=root rw console=tty0 console=ttyS0,115200n8" in cfg
    assert "ostree=/ostree/boot.1/debian/" in cfg
    assert "../loader/grub.cfg" in disk.debugfs("boot", "stat /grub/grub.cfg")  # grub2 backend's target
    assert "normal.mod" in disk.debugfs("boot", "ls -l /grub/x86_64-efi")
    assert "efi" in disk.debugfs("boot", "ls /")  # mount point of the ESP

    commit = compose_v1.commit.commit
    repo_config = disk.debugfs("root", "cat /ostree/repo/config")
    assert "bootloader=grub2" in repo_config
    # no update section: a remote without a URL (never the build host's file:// repository)
    assert '[remote "debian"]' in repo_config and "\nurl=\n" in repo_config and "file://" not in repo_config
    refs = disk.debugfs("root", f"cat /ostree/repo/refs/remotes/debian/{compose_v1.commit.ref}")
    assert refs.strip() == commit  # the deployment follows the ref, so `ostree admin upgrade` works
    deploy = f"/ostree/deploy/debian/deploy/{commit}.0"
    fstab = disk.debugfs("root", f"cat {deploy}/etc/fstab")
    assert "LABEL=boot /boot ext4" in fstab and "LABEL=EFI-SYSTEM /boot/efi vfat" in fstab
    assert "dpkg" in disk.debugfs("root", "ls /ostree/deploy/debian/var/lib")  # /var seeded from the commit
    root_boot = disk.debugfs("root", "ls /boot")
    assert root_boot.split() == [".", ".."] or "ostree" not in root_boot
    subprocess.run(["e2fsck", "-fn", f"{raw}?offset={disk.offsets['root']}"], check=False)  # informative only

    figures = ctx.disk["base/amd64"]
    print(f"\nFIGURE disk build: {compose_v1.seconds:.0f}s; virtual {raw.stat().st_size // MiB} MiB; "
          f"allocated raw {figures['allocated']['raw'] // MiB} MiB, qcow2 {qcow2.stat().st_size // MiB} MiB")


def test_disk_phase_skips_without_disk_outputs(compose_v1: imagefixtures.FixtureCompose, tmp_path: Path) -> None:
    manifest = imagefixtures.fixture_manifest()
    manifest.outputs = ["oci"]
    ctx = imagefixtures.make_context(tmp_path / "t", compose_v1.commit, "x-1-20260101.t.0", manifest)
    assert "raw and/or qcow2" in (DiskPhase(ctx).skip_reason() or "")


def test_disk_phase_needs_a_commit(compose_v1: imagefixtures.FixtureCompose, tmp_path: Path) -> None:
    ctx = imagefixtures.make_context(tmp_path / "t", compose_v1.commit, "x-1-20260101.t.0",
                                     imagefixtures.fixture_manifest())
    ctx.variants[0].commit = None
    with pytest.raises(ComposeError, match=r"base/amd64 has no OSTree commit \(did ostree_commit run\?\)"):
        DiskPhase(ctx).run()
    assert not ctx.paths.images_dir("base", "amd64").exists()


def test_disk_phase_rejects_a_bad_free_space(compose_v1: imagefixtures.FixtureCompose, tmp_path: Path) -> None:
    ctx = imagefixtures.make_context(tmp_path / "t", compose_v1.commit, "x-1-20260101.t.0",
                                     imagefixtures.fixture_manifest(free_space="plenty"))
    with pytest.raises(Exception, match=r"disk\.free_space 'plenty' is not a size"):
        DiskPhase(ctx).run()
