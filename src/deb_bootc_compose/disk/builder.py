"""Build raw and/or qcow2 disk images from an OSTree commit.

Order of work: check space (before anything is written) → stage the sysroot → ESP, /boot and root
as files → GPT image → qcow2. Outputs are written under temporary names next to their final place and
renamed at the very end; any failure or interruption removes the partial files and the staging
directory. Nothing is mounted and no loop device is used.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from deb_bootc_compose.treeops import adopt_host_writes
from debsandbox.commands import run

from . import filesystems, layout, sysroot
from .errors import DiskError, NotEnoughSpace
from .imagetools import require_host_tools, staging_ids
from .layout import DiskOptions, MiB

FORMATS = ("raw", "qcow2")
HOST_TOOLS = ("ostree", "sfdisk", "mkfs.ext4", "e2fsck", "mkfs.vfat", "mmd", "mcopy", "qemu-img")


@dataclass
class DiskResult:
    images: dict[str, Path]  # format -> final path
    sizes: dict[str, int]  # format -> bytes allocated on disk
    virtual_size: int
    seconds: float
    partitions: dict[str, int] = field(default_factory=dict)  # name -> size in bytes
    kernel_args: list[str] = field(default_factory=list)


def commit_content_size(repo: Path, commit: str) -> int:
    """Sum of the file sizes in ``commit`` (from ``ostree ls -R``; cheap, reads only metadata)."""
    out = run(["ostree", f"--repo={repo}", "ls", "-R", commit], capture=True).output
    total = 0
    for line in out.splitlines():
        parts = line.split(None, 4)
        if len(parts) == 5 and parts[0].startswith("-") and parts[3].isdigit():
            total += int(parts[3])
    return total


def _available(path: Path) -> tuple[int, int]:
    probe = path
    while not probe.exists():
        probe = probe.parent
    st = os.statvfs(probe)
    return st.f_bavail * st.f_frsize, os.stat(probe).st_dev


def check_space(content: int, outputs: dict[str, Path], scratch: Path, options: DiskOptions) -> None:
    """Raise :class:`NotEnoughSpace` unless the scratch and output filesystems can hold the build."""
    fs_bytes = content + content // 5 + 64 * MiB  # one filesystem's worth of blocks in use
    needs: dict[int, int] = {}
    where: dict[int, list[str]] = {}
    avail: dict[int, int] = {}
    # staging: the bare repo (content), /boot copy and root.ext4/boot.ext4 files (content again)
    a, dev = _available(scratch)
    avail[dev] = a
    raw_in_scratch = 0 if "raw" in outputs else fs_bytes
    needs[dev] = needs.get(dev, 0) + 2 * fs_bytes + raw_in_scratch + options.esp_size
    where.setdefault(dev, []).append(f"scratch {scratch}")
    for fmt, out in outputs.items():
        a, dev = _available(out.parent)
        avail[dev] = a
        needs[dev] = needs.get(dev, 0) + fs_bytes
        where.setdefault(dev, []).append(f"{fmt} {out}")
    for dev, need in needs.items():
        if need > avail[dev]:
            raise NotEnoughSpace(
                f"not enough free space for the disk image: {', '.join(where[dev])} need about "
                f"{need // MiB} MiB, the filesystem has {avail[dev] // MiB} MiB free. Free some space or "
                "choose another output/scratch directory; nothing was written."
            )


def build_disk(src: sysroot.InstallSource, outputs: dict[str, Path], scratch: Path, log: Path,
               options: DiskOptions | None = None, osname: str = "debian",
               cancel: threading.Event | None = None, epoch: int | None = None) -> DiskResult:
    """Install ``src`` into new disk images; ``outputs`` maps "raw"/"qcow2" to final paths."""
    options = options or DiskOptions()
    if not outputs or any(fmt not in FORMATS for fmt in outputs):
        raise DiskError(f"disk formats must be among {', '.join(FORMATS)}; asked for {', '.join(outputs)}")
    require_host_tools(*HOST_TOOLS)
    if os.geteuid() != 0:
        raise DiskError("building a disk image needs root (file ownership in the image, bubblewrap with "
                        "capabilities); run it as root")
    start = time.monotonic()
    content = commit_content_size(src.repo, src.commit)
    check_space(content, outputs, scratch, options)

    scratch.mkdir(parents=True, exist_ok=True)
    staging = Path(_mkdtemp(scratch, ".disk-staging-"))
    partials = {fmt: out.parent / f".{out.name}.partial" for fmt, out in outputs.items()}
    raw = partials.get("raw") or staging / "disk.raw"
    try:
        kargs = sysroot.kernel_args(list(options.kernel_args), options.serial_console)
        ids = staging_ids()
        dep = sysroot.stage(src, staging, osname, kargs, log, cancel, ids)
        efi = sysroot.configure(dep, staging, log)
        _check(cancel)
        shutil.rmtree(dep.tools.root)
        # /boot goes to its own filesystem: move it out, leave an empty mount point
        bootfs = staging / "bootfs"
        (dep.sysroot / "boot").rename(bootfs)
        (dep.sysroot / "boot").mkdir(mode=0o755)
        # what was written here as the host's root (fstab, grub.cfg, the mount point) gets its namespace ids
        for content_dir in (bootfs, dep.sysroot):
            adopt_host_writes(content_dir, ids)
        root_usage = layout.tree_usage(dep.sysroot)
        boot_usage = layout.tree_usage(bootfs)
        boot_size = max(options.boot_min_size, layout.ext4_size(boot_usage, 2 * boot_usage.bytes))
        root_size = layout.ext4_size(root_usage, options.free_space)
        p = layout.plan(options.esp_size, boot_size, root_size, seed=src.commit)
        files: dict[str, Path] = {}
        for part, content_dir in (("boot", bootfs), ("root", dep.sysroot)):
            pp = p.by_name(part)
            files[part] = staging / f"{part}.ext4"
            usage = boot_usage if part == "boot" else root_usage
            filesystems.make_ext4(files[part], pp.size, content_dir, pp.label, pp.uuid,
                                  layout.ext4_inodes(usage, pp.size), log, epoch, cancel, ids)
            _check(cancel)
        esp = p.by_name("esp")
        files["esp"] = staging / "esp.vfat"
        filesystems.make_esp(files["esp"], esp.size, efi, filesystems.esp_volume_id(esp.uuid), log)
        raw.parent.mkdir(parents=True, exist_ok=True)
        with open(raw, "wb") as fh:
            fh.truncate(p.disk_size)
        layout.write_partition_table(raw, p, log)
        for partition in p.partitions:
            layout.copy_into(raw, partition.start, files[partition.name], partition.size)
            _check(cancel)
        if "qcow2" in outputs:
            partials["qcow2"].parent.mkdir(parents=True, exist_ok=True)  # qcow2 alone: no raw made the dir
            run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(partials["qcow2"])], log=log,
                cancel=cancel)
        for fmt, out in outputs.items():
            out.parent.mkdir(parents=True, exist_ok=True)
            os.replace(partials[fmt], out)
        sizes = {fmt: out.stat().st_blocks * 512 for fmt, out in outputs.items()}
        return DiskResult(dict(outputs), sizes, p.disk_size, time.monotonic() - start,
                          {x.name: x.size for x in p.partitions}, kargs)
    finally:
        for partial in partials.values():
            partial.unlink(missing_ok=True)
        shutil.rmtree(staging, ignore_errors=True)


def _mkdtemp(parent: Path, prefix: str) -> str:
    import tempfile

    return tempfile.mkdtemp(prefix=prefix, dir=parent)


def _check(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise KeyboardInterrupt("disk build interrupted")
