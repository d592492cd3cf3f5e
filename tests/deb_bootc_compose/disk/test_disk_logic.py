"""Pure logic of the disk builder: sizes, GPT layout, kernel arguments, GRUB config from BLS entries."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from deb_bootc_compose.disk import grub, layout, sysroot
from deb_bootc_compose.disk.builder import check_space
from deb_bootc_compose.disk.errors import DiskError, NotEnoughSpace, UsageError
from deb_bootc_compose.disk.install import parse_size
from deb_bootc_compose.disk.layout import DiskOptions, MiB

BLS = """title Debian GNU/Linux 13 (trixie) 1 (ostree:0)
version 2
options root=LABEL=root rw console=ttyS0,115200n8 ostree=/ostree/boot.1/debian/abc/0
linux /ostree/debian-abc/vmlinuz-6.12.107+deb13-amd64
initrd /ostree/debian-abc/initramfs-6.12.107+deb13-amd64.img
aboot /ostree/deploy/debian/deploy/x.0/usr/lib/ostree-boot/aboot.img
"""


@pytest.mark.parametrize(("text", "expected"), [
    ("1GiB", 1024**3), ("512MiB", 512 * MiB), ("2G", 2 * 1024**3), ("100", 100), ("1.5G", 3 * 512 * MiB),
    ("10MB", 10**7), (4096, 4096),
])
def test_parse_size(text: str | int, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["lots", "1 parsec", "", "-1G", "G"])
def test_parse_size_rejects_garbage_and_says_how(text: str) -> None:
    with pytest.raises(UsageError, match="write it like 1GiB"):
        parse_size(text, "disk.free_space")


def test_plan_aligns_and_orders_partitions() -> None:
    p = layout.plan(64 * MiB, 300 * MiB + 5, 900 * MiB, seed="c0ffee")
    esp, boot, root = p.partitions
    assert (esp.name, boot.name, root.name) == ("esp", "boot", "root")
    assert esp.start == MiB and boot.start == esp.start + esp.size and root.start == boot.start + boot.size
    assert all(x.start % MiB == 0 and x.size % MiB == 0 for x in p.partitions)
    assert boot.size == 301 * MiB  # rounded up, never down
    assert p.disk_size == root.start + root.size + MiB  # room for the backup GPT
    # same seed, same identifiers: a rebuild of one commit gets the same disk and filesystem UUIDs
    again = layout.plan(64 * MiB, 300 * MiB + 5, 900 * MiB, seed="c0ffee")
    assert [x.uuid for x in again.partitions] == [x.uuid for x in p.partitions] and again.disk_uuid == p.disk_uuid
    assert layout.plan(64 * MiB, 300 * MiB, 900 * MiB, seed="other").disk_uuid != p.disk_uuid


def test_sfdisk_script_names_types_and_labels() -> None:
    p = layout.plan(64 * MiB, 384 * MiB, 1024 * MiB, seed="x")
    script = layout.sfdisk_script(p)
    assert script.startswith("label: gpt\n")
    assert f"type={layout.ESP_TYPE}" in script and 'name="EFI-SYSTEM"' in script
    assert 'name="boot"' in script and 'name="root"' in script
    assert "start=2048, size=131072," in script


def test_ext4_size_grows_with_content_and_free_space() -> None:
    u = layout.Usage(bytes=500 * MiB, inodes=20000)
    small = layout.ext4_size(u, 0)
    assert small > 500 * MiB and small % MiB == 0
    assert layout.ext4_size(u, 1024 * MiB) == small + 1024 * MiB
    assert layout.ext4_inodes(u, small) >= 2 * u.inodes


def test_tree_usage_counts_hard_links_once(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"x" * 100_000)
    os.link(tmp_path / "a", tmp_path / "b")
    once = layout.tree_usage(tmp_path)
    (tmp_path / "c").write_bytes(b"y" * 100_000)
    twice = layout.tree_usage(tmp_path)
    assert twice.bytes - once.bytes >= 100_000
    assert once.bytes < 2 * 100_000 + 8192


def test_copy_into_keeps_holes_and_data(tmp_path: Path) -> None:
    src = tmp_path / "part"
    src.write_bytes(b"\0" * (8 * MiB) + b"data" + b"\0" * 100)
    img = tmp_path / "img"
    with open(img, "wb") as fh:
        fh.truncate(32 * MiB)
    layout.copy_into(img, 2 * MiB, src, 16 * MiB)
    with open(img, "rb") as fh:
        fh.seek(10 * MiB)
        assert fh.read(4) == b"data"
    assert img.stat().st_blocks * 512 < 8 * MiB  # the zero megabytes stayed holes
    with pytest.raises(ValueError, match="larger than its partition"):
        layout.copy_into(img, 0, src, MiB)


def test_kernel_args_defaults_and_manifest_args() -> None:
    assert sysroot.kernel_args([]) == ["root=LABEL=root", "rw", "console=tty0", "console=ttyS0,115200n8"]
    assert sysroot.kernel_args(["quiet"], serial_console=False) == ["root=LABEL=root", "rw", "quiet"]
    # a manifest that names its own console replaces the default ones
    assert sysroot.kernel_args(["console=ttyS1"]) == ["root=LABEL=root", "rw", "console=ttyS1"]
    assert sysroot.kernel_args(["rw", "quiet"]).count("rw") == 1


def test_grub_cfg_from_bls_entries(tmp_path: Path) -> None:
    entries = tmp_path / "entries"
    entries.mkdir()
    (entries / "ostree-2-debian.conf").write_text(BLS)
    (entries / "ostree-1-debian.conf").write_text(BLS.replace("version 2", "version 1").replace("abc", "old"))
    parsed = grub.read_entries(entries)
    assert [e.version for e in parsed] == ["2", "1"]  # newest (the default) first
    cfg = grub.grub_cfg(parsed)
    first = cfg.index("menuentry")
    assert "linux /ostree/debian-abc/vmlinuz-6.12.107+deb13-amd64 root=LABEL=root rw" in cfg[first:]
    assert cfg.index("debian-abc") < cfg.index("debian-old")
    assert "initrd /ostree/debian-abc/initramfs-6.12.107+deb13-amd64.img" in cfg
    assert "aboot" not in cfg and "terminal_output serial console" in cfg


def test_bls_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(DiskError, match="no boot entries"):
        grub.read_entries(tmp_path)
    (tmp_path / "broken.conf").write_text("title x\nversion 1\n")
    with pytest.raises(DiskError, match=r"broken\.conf has no 'linux' line"):
        grub.read_entries(tmp_path)


def test_early_config_finds_boot_by_label() -> None:
    cfg = grub.early_config()
    assert "search --no-floppy --label boot --set=root" in cfg
    assert "configfile ($root)/loader/grub.cfg" in cfg


def test_check_space_refuses_impossible_builds(tmp_path: Path) -> None:
    free = os.statvfs(tmp_path).f_bavail * os.statvfs(tmp_path).f_frsize
    with pytest.raises(NotEnoughSpace, match=r"need about \d+ MiB, the filesystem has \d+ MiB free") as exc:
        check_space(free * 2, {"raw": tmp_path / "x.raw"}, tmp_path, DiskOptions())
    assert "nothing was written" in str(exc.value)
    check_space(10 * MiB, {"raw": tmp_path / "x.raw", "qcow2": tmp_path / "x.qcow2"}, tmp_path, DiskOptions())
    assert list(tmp_path.iterdir()) == []
