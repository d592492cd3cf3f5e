"""``install-to-disk`` from an OCI bootc image for real, and every refusal it must make before touching anything."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import imagefixtures
import pytest
from diskinspect import DiskImage

from deb_bootc_compose.cli import main as compose_main
from deb_bootc_compose.disk import cli

pytestmark = pytest.mark.integration


def test_install_oci_archive_to_raw(commit_v1: imagefixtures.FixtureCommit, test_cache: Path, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    archive = imagefixtures.oci_archive(test_cache, commit_v1)
    disk = tmp_path / "disk.raw"
    rc = compose_main(["install-to-disk", f"oci-archive:{archive}", str(disk), "--free-space", "128MiB",
                       "--karg", "quiet", "--stateroot", "debian"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert out.strip().splitlines()[-1] == str(disk)
    assert "kernel arguments: root=LABEL=root rw console=tty0 console=ttyS0,115200n8 quiet" in out
    image = DiskImage(disk)
    assert image.names == ["EFI-SYSTEM", "boot", "root"]
    cfg = image.debugfs("boot", "cat /loader/grub.cfg")
    assert " quiet ostree=/ostree/boot.1/debian/" in cfg
    # the OCI import committed the layers again: same files, so the same kernel is deployed
    assert f"vmlinuz-{commit_v1.kernel_version}" in cfg
    assert sorted(p.name for p in tmp_path.iterdir()) == ["disk.raw", "disk.raw.install.log"]


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    rc = cli.main(argv)
    return rc, capsys.readouterr().err


def test_block_device_needs_loud_confirmation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # a block device node of a loop device that does not exist: any write would fail, nothing can be hurt
    dev = tmp_path / "fake-disk"
    os.mknod(dev, 0o600 | 0o060000, os.makedev(7, 250))
    rc, err = run_cli(["ostree:/nonexistent", str(dev)], capsys)
    assert rc == 2 and "ERASES EVERYTHING" in err and f"--i-know-this-wipes={dev}" in err
    rc, err = run_cli(["ostree:/nonexistent", str(dev), "--i-know-this-wipes=/dev/sdz"], capsys)
    assert rc == 2 and "ERASES EVERYTHING" in err


def test_bad_sources_are_named(commit_v1: imagefixtures.FixtureCommit, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "d.raw")
    rc, err = run_cli([str(tmp_path / "nothing-here"), out], capsys)
    assert rc == 2 and "does not exist" in err and "oci-archive:FILE" in err
    rc, err = run_cli([str(tmp_path), out], capsys)
    assert rc == 2 and "neither a compose directory" in err
    rc, err = run_cli([f"ostree:{commit_v1.repo}:no/such/ref", out], capsys)
    assert rc == 2 and "no ref or commit 'no/such/ref'" in err and commit_v1.ref in err
    rc, err = run_cli([f"oci:{tmp_path}", out], capsys)
    assert rc == 2 and "not an OCI image layout" in err
    rc, err = run_cli([str(commit_v1.repo), out, "--free-space", "lots"], capsys)
    assert rc == 2 and "--free-space 'lots' is not a size" in err
    rc, err = run_cli([str(commit_v1.repo), str(tmp_path / "missing-dir" / "d.raw")], capsys)
    assert rc == 2 and "does not exist; create it first" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_install_onto_a_loop_device(commit_v1: imagefixtures.FixtureCommit, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    """A real block device (a loop device over a sparse file). The image is built in the scratch directory
    and written whole, so no partition nodes (/dev/loopNpM, which need udev) are ever needed."""
    backing = tmp_path / "backing.img"
    with open(backing, "wb") as fh:
        fh.truncate(3 << 30)
    dev = subprocess.run(["losetup", "--find", "--show", str(backing)], check=True, capture_output=True,
                         text=True).stdout.strip()
    try:
        scratch = tmp_path / "scratch"
        scratch.mkdir()
        rc = cli.main([f"ostree:{commit_v1.repo}:{commit_v1.ref}", dev, "--free-space", "128MiB",
                       f"--i-know-this-wipes={dev}", "--scratch", str(scratch)])
        out, err = capsys.readouterr()
        assert rc == 0, err
        assert out.strip().splitlines()[-1] == dev
        verify = subprocess.run(["sfdisk", "--verify", dev], capture_output=True, text=True)
        assert verify.returncode == 0 and "No errors detected" in verify.stdout, verify.stdout + verify.stderr
        written = DiskImage(dev)
        # the backup GPT was moved to the end of the 3 GiB device, not left where the image ended
        assert written.table["lastlba"] == (3 << 30) // 512 - 34
        assert written.names == ["EFI-SYSTEM", "boot", "root"]
        assert [p.name for p in scratch.iterdir()] == [f"{Path(dev).name}.install.log"]  # no leftovers
    finally:
        subprocess.run(["losetup", "-d", dev], check=True)
    assert str(backing) not in subprocess.run(["losetup", "-a"], capture_output=True, text=True).stdout
    cfg = written.debugfs("boot", "cat /loader/grub.cfg", image=backing)
    assert f"vmlinuz-{commit_v1.kernel_version}" in cfg and "ostree=/ostree/boot.1/debian/" in cfg
