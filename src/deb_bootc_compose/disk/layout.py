"""Partition layout: sizes from content, the GPT written by sfdisk, partitions copied into place.

The image is ``ESP (vfat) + /boot (ext4) + root (ext4)``, each partition aligned to 1 MiB. Sizes come
from the staged content plus configurable free space, never a fixed size. Nothing here needs a loop
device: filesystems are built as files and written into the image at their offsets.
"""

from __future__ import annotations

import json
import os
import stat
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from debsandbox.commands import run

MiB = 1024 * 1024
SECTOR = 512
ESP_TYPE = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
LINUX_FS_TYPE = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
# Labels the boot chain relies on: GRUB's embedded config finds /boot by label, root= uses the root label.
ESP_LABEL = "EFI-SYSTEM"
BOOT_LABEL = "boot"
ROOT_LABEL = "root"


@dataclass(frozen=True)
class DiskOptions:
    """What the user can tune about a disk image."""

    free_space: int = 1024 * MiB  # left free on the root filesystem for /var, /etc and updates
    esp_size: int = 64 * MiB
    boot_min_size: int = 384 * MiB  # room for the kernels of at least three deployments
    kernel_args: tuple[str, ...] = ()
    serial_console: bool = True  # add console=tty0 console=ttyS0,115200n8 unless kernel_args name a console


@dataclass(frozen=True)
class Usage:
    """Disk usage of a directory tree (hard links counted once)."""

    bytes: int
    inodes: int


def tree_usage(root: Path) -> Usage:
    seen: set[tuple[int, int]] = set()
    total = 0
    count = 0
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            st = os.lstat(os.path.join(dirpath, name))
            key = (st.st_dev, st.st_ino)
            if key in seen:
                continue
            seen.add(key)
            count += 1
            total += max(st.st_blocks * 512, 4096 if stat.S_ISDIR(st.st_mode) else 0)
    return Usage(total, count + 1)


def _round_mib(n: int) -> int:
    return -(-n // MiB) * MiB


def ext4_size(usage: Usage, free: int) -> int:
    """Filesystem size for ``usage`` plus ``free`` bytes: data, 4 KiB-block slack, inodes, journal."""
    data = usage.bytes + usage.bytes // 10  # block rounding, directories, extent trees
    inode_tables = usage.inodes * 2 * 256
    return _round_mib(data + inode_tables + 48 * MiB + free)


def ext4_inodes(usage: Usage, size: int) -> int:
    """Twice the files we ship, and never fewer than ext4's default ratio would give."""
    return max(usage.inodes * 2 + 8192, size // (16 * 1024))


@dataclass
class Partition:
    name: str
    label: str
    type_uuid: str
    size: int
    uuid: str
    start: int = 0  # bytes, set by plan()


@dataclass
class Plan:
    partitions: list[Partition]
    disk_size: int
    disk_uuid: str
    extra: dict[str, int] = field(default_factory=dict)

    def by_name(self, name: str) -> Partition:
        return next(p for p in self.partitions if p.name == name)


def plan(esp: int, boot: int, root: int, seed: str) -> Plan:
    """Lay out the three partitions from 1 MiB on; UUIDs derive from ``seed`` so a rebuild matches."""

    def uid(what: str) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"deb-bootc-compose:{seed}:{what}"))

    parts = [
        Partition("esp", ESP_LABEL, ESP_TYPE, _round_mib(esp), uid("esp")),
        Partition("boot", BOOT_LABEL, LINUX_FS_TYPE, _round_mib(boot), uid("boot")),
        Partition("root", ROOT_LABEL, LINUX_FS_TYPE, _round_mib(root), uid("root")),
    ]
    offset = MiB
    for p in parts:
        p.start = offset
        offset += p.size
    return Plan(parts, offset + MiB, uid("disk"))  # 1 MiB tail holds the backup GPT


def sfdisk_script(p: Plan) -> str:
    lines = ["label: gpt", f"label-id: {p.disk_uuid}", "unit: sectors", "first-lba: 2048", ""]
    for part in p.partitions:
        lines.append(
            f"start={part.start // SECTOR}, size={part.size // SECTOR}, type={part.type_uuid}, "
            f'uuid={part.uuid}, name="{part.label}"'
        )
    return "\n".join(lines) + "\n"


def write_partition_table(image: Path, p: Plan, log: Path) -> None:
    run(["sfdisk", "--no-reread", "--no-tell-kernel", "--wipe=always", str(image)],
        stdin=sfdisk_script(p).encode(), log=log)


def read_partition_table(image: Path) -> list[dict[str, object]]:
    out = run(["sfdisk", "-J", str(image)], capture=True).output
    table: list[dict[str, object]] = json.loads(out)["partitiontable"]["partitions"]
    return table


def copy_into(image: Path, offset: int, source: Path, max_size: int, chunk: int = 4 * MiB, sparse: bool = True
              ) -> None:
    """Copy ``source`` into ``image`` at ``offset``; with ``sparse``, zero blocks stay holes (for new files)."""
    size = source.stat().st_size
    if size > max_size:
        raise ValueError(f"{source} is {size} bytes, larger than its partition ({max_size} bytes)")
    zero = bytes(chunk)
    with open(source, "rb") as src, open(image, "r+b") as dst:
        pos = 0
        while pos < size:
            block = src.read(chunk)
            if not block:
                break
            if not sparse or block != zero[: len(block)]:
                os.pwrite(dst.fileno(), block, offset + pos)
            pos += len(block)
