"""``install-to-disk``: our ``bootc install to-disk`` — a source onto a disk image file or a block device."""

from __future__ import annotations

import os
import re
import stat
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from debsandbox.commands import run

from . import source
from .builder import DiskResult, build_disk
from .errors import DiskError, UsageError
from .layout import DiskOptions, MiB, copy_into
from .source import Registry

_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1000, "kib": 1024, "m": MiB, "mb": 10**6, "mib": MiB,
          "g": 1024**3, "gb": 10**9, "gib": 1024**3, "t": 1024**4, "tb": 10**12, "tib": 1024**4}


def parse_size(text: str | int, what: str = "size") -> int:
    """``1GiB``, ``512M``, ``2G``, ``1000000`` → bytes (M/G/T without "i" are binary, like dd and qemu-img)."""
    if isinstance(text, int):
        return text
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", text)
    if not m or m.group(2).lower() not in _UNITS:
        raise UsageError(f"{what} {text!r} is not a size; write it like 1GiB, 512MiB or 2G")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def disk_format(path: Path) -> str:
    return "qcow2" if path.suffix == ".qcow2" else "raw"


def is_block_device(path: Path) -> bool:
    try:
        return stat.S_ISBLK(path.stat().st_mode)
    except FileNotFoundError:
        return False


def device_size(path: Path) -> int:
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.lseek(fd, 0, os.SEEK_END)
    finally:
        os.close(fd)


@dataclass
class InstallRequest:
    source: str
    disk: Path
    ref: str | None = None
    variant: str = "base"  # for a compose directory source
    arch: str = "amd64"
    options: DiskOptions = field(default_factory=DiskOptions)
    stateroot: str = "debian"
    remote_url: str | None = None
    scratch: Path | None = None
    wipe_confirmation: str | None = None  # must equal the device path for block devices
    log: Path | None = None
    cancel: threading.Event | None = None
    registry: Registry = field(default_factory=Registry)  # docker:// sources: TLS settings


def install(req: InstallRequest) -> DiskResult:
    target = req.disk
    block = is_block_device(target)
    if block:
        if req.wipe_confirmation is None or Path(req.wipe_confirmation).resolve() != target.resolve():
            raise UsageError(
                f"{target} is a block device: installing ERASES EVERYTHING on it. If that is what you want, "
                f"repeat its path as --i-know-this-wipes={target}"
            )
    elif target.exists() and target.is_dir():
        raise UsageError(f"{target} is a directory; give the path of the disk image file to write")
    elif not target.parent.is_dir():
        raise UsageError(f"{target.parent} does not exist; create it first")
    scratch = req.scratch or (Path(tempfile.gettempdir()) if block else target.parent)
    log = req.log or scratch / f"{target.name}.install.log"
    with source.resolve(req.source, scratch, log, req.ref, req.remote_url, req.variant, req.arch,
                        req.registry) as src:
        if not block:
            return build_disk(src, {disk_format(target): target}, scratch, log, req.options, req.stateroot,
                              req.cancel)
        with tempfile.TemporaryDirectory(prefix=".install-to-disk-", dir=scratch) as tmp:
            raw = Path(tmp) / "disk.raw"
            result = build_disk(src, {"raw": raw}, scratch, log, req.options, req.stateroot, req.cancel)
            size = device_size(target)
            if size < result.virtual_size:
                raise DiskError(f"{target} holds {size // MiB} MiB, the image needs {result.virtual_size // MiB} MiB")
            copy_into(target, 0, raw, size, sparse=False)
            # the backup GPT belongs at the end of the device, not where the image ended
            run(["sfdisk", "--no-reread", "--no-tell-kernel", "--relocate", "gpt-bak-std", str(target)], log=log)
            os.sync()
            result.images = {"raw": target}
            return result
