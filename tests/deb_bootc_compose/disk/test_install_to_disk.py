"""``install-to-disk`` from an OCI bootc image for real, and every refusal it must make before touching anything:
bad sources, bad image references (unknown transport, malformed, missing image, unreachable registry) and
images that cannot boot (no kernel, no initramfs, an initramfs for another kernel), which ``boot-test`` refuses
the same way. (``docker://`` for real: tests/deb_bootc_compose/registry/test_registry_push.py;
``containers-storage:``: the Particle-OS test in tests/deb_bootc_compose/boot/test_debian_atomic.py.)"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import imagefixtures
import pytest
from diskinspect import DiskImage
from imagelint_helpers import good_image_tree, initramfs, tree_layer, write_layout
from test_compose_lint import KVER

from deb_bootc_compose.boot import cli as boot_cli
from deb_bootc_compose.cli import main as compose_main
from deb_bootc_compose.disk import cli
from httpserve import free_port

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


def _no_kernel(t: Path) -> None:
    (t / f"usr/lib/modules/{KVER}/vmlinuz").unlink()


def _no_initramfs(t: Path) -> None:
    (t / f"usr/lib/modules/{KVER}/initramfs.img").unlink()


def _other_initramfs(t: Path) -> None:
    (t / f"usr/lib/modules/{KVER}/initramfs.img").write_bytes(initramfs("6.1.0-99-amd64"))


@pytest.mark.parametrize("damage, cause", [
    (_no_kernel, "/usr/lib/modules: no usr/lib/modules/$kver/vmlinuz: the image has no bootable kernel"),
    (_no_initramfs, f"/usr/lib/modules/{KVER}/initramfs.img: missing or empty: build it with dracut --add ostree"),
    (_other_initramfs, f"/usr/lib/modules/{KVER}/initramfs.img: built for 6.1.0-99-amd64, not for the kernel "
                       f"{KVER} it sits beside (→ regenerate it in the Containerfile, after the kernel change: "
                       f"RUN dracut --no-hostonly --reproducible --add ostree --tmpdir /tmp --force "
                       f"/usr/lib/modules/{KVER}/initramfs.img {KVER})"),
])
def test_unbootable_images_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       damage: Callable[[Path], None], cause: str) -> None:
    """A Containerfile image that removed its kernel or initramfs (or changed the kernel without a new one):
    install-to-disk and boot-test refuse it, naming the cause, and leave nothing behind."""
    tree = good_image_tree(tmp_path / "tree")
    damage(tree)
    layout = write_layout(tmp_path / "layout", [tree_layer(tree)])
    out = tmp_path / "out"
    out.mkdir()
    rc, err = run_cli([f"oci:{layout}", str(out / "d.raw")], capsys)
    assert rc == 2 and f"oci:{layout} is not a bootable image, refusing to install it: " in err and cause in err, err
    assert f"'deb-bootc-compose lint oci:{layout}' shows every problem" in err
    assert sorted(p.name for p in out.iterdir()) == ["d.raw.install.log"]
    rc = boot_cli.main([f"oci:{layout}:1", "--log-dir", str(out / "boot")])
    err = capsys.readouterr().err
    assert rc == 2 and f"boot-test: cannot install oci:{layout}:1 to boot it: " in err and cause in err, err
    assert sorted(p.name for p in (out / "boot").iterdir()) == ["install.log"]  # no disk image left


def test_bad_image_references_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Each reference form, wrong in each way a user gets it wrong; nothing is written but the log."""
    store = f"[vfs@{tmp_path / 'storage'}+{tmp_path / 'run'}]"
    port = free_port()  # nothing listens there
    out = str(tmp_path / "out" / "d.raw")
    (tmp_path / "out").mkdir()
    for ref, words in [
        ("containers-storage:", "the reference names no image (e.g. containers-storage:NAME)"),
        ("docker://", "the reference names no image (e.g. docker://registry.example.org/debian-atomic/base:13)"),
        ("docker://registry.example.org/Debian Atomic:13", "not a registry reference: expected docker://[HOST"),
        (f"oci-archive:{tmp_path}/none.tar", "no such file"),
        (f"oci:{tmp_path}/none", "is not a directory (an OCI image layout)"),
        (f"containers-storage:{store}localhost/no-such-image:1",
         "); check its name and tag ('podman images' lists the local ones"),
        (f"docker://127.0.0.1:{port}/debian-atomic/base:13",
         f"the registry 127.0.0.1:{port} is unreachable"),
    ]:
        rc, err = run_cli([ref, out, "--tls-verify", "false"], capsys)
        assert rc == 2 and err.startswith("install-to-disk: ") and words in err, (ref, err)
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["d.raw.install.log"]


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
