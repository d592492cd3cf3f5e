"""Run the image's own tools (ostree, grub-mkimage) against host paths, through bubblewrap.

The host's ostree (bookworm, 2022.7) does not seed ``/var`` from the commit and lacks newer sysroot
features, so every ``ostree admin`` call uses the ostree shipped in the image. The image tree is a
checkout of the commit (``/usr/etc`` layout); it is bound read-only, the host paths the tool must
write are bound at fixed places inside.

The sandbox keeps only the capabilities file installation needs (ownership, modes, file capabilities).
Without CAP_SYS_ADMIN ostree's FIFREEZE of "/boot" falls back to syncfs: a staging directory on the
host's root filesystem must never freeze that filesystem.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from debsandbox.commands import Completed, run

from ..intree import Tree
from .errors import DiskError

CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_SETFCAP",
        "CAP_MKNOD"]


def require_host_tools(*names: str) -> None:
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        raise DiskError(
            f"missing host tools: {', '.join(missing)}; install them (scripts/install-deps.sh lists the "
            "Debian packages: ostree bubblewrap fdisk dosfstools mtools e2fsprogs qemu-utils)"
        )


class ImageTools:
    """Commands from the image at ``root`` (a checkout of the commit), with host directories bound in."""

    def __init__(self, root: Path, log: Path, cancel: threading.Event | None = None) -> None:
        self.root = root
        self.log = log
        self.cancel = cancel
        self.tree = Tree(root)  # the image's paths resolve inside it, never on the host
        if not self.tree.is_dir("usr/bin"):
            raise DiskError(f"{root} is not an OS tree (no usr/bin)")
        self._usr = self.tree.host_path("usr")
        self._etc = self.tree.host_path("etc" if self.tree.is_dir("etc") else "usr/etc")

    def has(self, path: str) -> bool:
        return self.tree.exists(path)

    def argv(self, argv: Sequence[str], binds: Mapping[str, Path], ro_binds: Mapping[str, Path] | None = None
             ) -> list[str]:
        cmd = ["bwrap", "--ro-bind", str(self._usr), "/usr", "--ro-bind", str(self._etc), "/etc"]
        for name in ("bin", "sbin", "lib", "lib64", "lib32", "libx32"):
            if self.tree.is_symlink(name):
                cmd += ["--symlink", self.tree.readlink(name), f"/{name}"]
        cmd += ["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--tmpfs", "/run", "--tmpfs", "/var",
                "--unshare-ipc", "--unshare-pid", "--unshare-uts", "--die-with-parent", "--cap-drop", "ALL"]
        for cap in CAPS:
            cmd += ["--cap-add", cap]
        for inside, host in (ro_binds or {}).items():
            cmd += ["--ro-bind", str(host), inside]
        for inside, host in binds.items():
            cmd += ["--bind", str(host), inside]
        cmd += ["--setenv", "PATH", "/usr/sbin:/usr/bin:/sbin:/bin", "--setenv", "LC_ALL", "C.UTF-8",
                "--setenv", "OSTREE_SYSROOT_DEBUG", "mutable-deployments", "--"]
        return cmd + list(argv)

    def run(self, argv: Sequence[str], binds: Mapping[str, Path], ro_binds: Mapping[str, Path] | None = None,
            capture: bool = False, timeout: float | None = 1800) -> Completed:
        return run(self.argv(argv, binds, ro_binds), log=self.log, capture=capture, timeout=timeout,
                   cancel=self.cancel, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/root"})
