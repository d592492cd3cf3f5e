"""Filesystems built as plain files, never mounted: ext4 with ``mkfs.ext4 -d``, the ESP with mtools."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from debsandbox import idmap
from debsandbox.commands import run

from .imagetools import in_namespace
from .layout import MiB


def make_ext4(image: Path, size: int, content: Path, label: str, fs_uuid: str, inodes: int, log: Path,
              epoch: int | None = None, cancel: threading.Event | None = None, ids: idmap.IdMap | None = None
              ) -> None:
    """An ext4 filesystem of ``size`` bytes holding ``content`` (owners, modes, xattrs, hard links kept).

    ``ids``: ``content`` was staged in a user namespace with that map; mkfs reads it there, so the
    filesystem holds the namespace's owners and file capabilities (never the host's subordinate ids)."""
    image.unlink(missing_ok=True)
    with open(image, "wb") as fh:
        fh.truncate(size)
    env = {"E2FSPROGS_FAKE_TIME": str(epoch)} if epoch is not None else {}
    argv = ["mkfs.ext4", "-q", "-F", "-L", label, "-U", fs_uuid, "-N", str(inodes), "-E",
            f"root_owner=0:0,hash_seed={fs_uuid}", "-d"]
    if ids is None:
        run([*argv, str(content), str(image)], log=log, extra_env=env, cancel=cancel)
    else:
        os.chown(image, ids.root_uid, ids.root_gid)
        in_namespace([*argv, "@content@/.", "@image@"], {"content": content, "image": image}, log, ids=ids,
                     cancel=cancel, env=env)
    # mkfs -d leaves errors for e2fsck to find on some trees (e.g. too few inodes); check it here, not at boot
    run(["e2fsck", "-f", "-n", str(image)], log=log, cancel=cancel)


def make_esp(image: Path, size: int, efi_binary: Path, volume_id: str, log: Path) -> None:
    """A FAT ESP with ``EFI/BOOT/BOOTX64.EFI``; filled with mtools, so no vfat driver is needed."""
    image.unlink(missing_ok=True)
    run(["mkfs.vfat", "-C", "-n", "EFI-SYSTEM", "-i", volume_id, str(image), str(size // 1024)], log=log)
    env = {"MTOOLS_SKIP_CHECK": "1"}
    run(["mmd", "-i", str(image), "::/EFI", "::/EFI/BOOT"], log=log, extra_env=env)
    run(["mcopy", "-i", str(image), str(efi_binary), "::/EFI/BOOT/BOOTX64.EFI"], log=log, extra_env=env)


def esp_volume_id(fs_uuid: str) -> str:
    """A FAT volume id (8 hex digits) derived from the partition's UUID."""
    return fs_uuid.replace("-", "")[:8].upper()


__all__ = ["MiB", "esp_volume_id", "make_esp", "make_ext4"]
