"""Run the image's own tools (ostree, grub-mkimage) against host paths, in the staging user namespace.

The host's ostree (bookworm, 2022.7) does not seed ``/var`` from the commit and lacks newer sysroot
features, so every ``ostree admin`` call uses the ostree shipped in the image. Those programs are package
code: they run in a user namespace (the debsandbox launcher; ns-root is the first id of root's subordinate
range, no capability on the host, no network) with a checkout of the commit as their root, the image's
``/usr/etc`` as ``/etc``, tmpfs ``/tmp``, ``/run`` and ``/var``, and the staging directories they must
write bound at fixed places inside. The staging sysroot is made in the same namespace (see
:mod:`.sysroot`), so ownership, set-id bits and file capabilities come out as the commit says, and
``mkfs.ext4 -d`` reads it in that namespace too.

Without CAP_SYS_ADMIN on the host, ostree's FIFREEZE of "/boot" falls back to syncfs; without
CAP_LINUX_IMMUTABLE deployments stay mutable (``OSTREE_SYSROOT_DEBUG=mutable-deployments``).
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from debsandbox import idmap
from debsandbox.commands import Completed
from debsandbox.sandbox import Bind, DirRoot, Sandbox

from ..intree import Tree
from .errors import DiskError


def staging_ids() -> idmap.IdMap:
    """The id map of the namespace the disk's sysroot is staged in (root's subordinate range)."""
    try:
        return idmap.current()
    except idmap.IdMapError as exc:
        raise DiskError(f"staging a disk image needs a subordinate id range for its user namespace: {exc}") from exc


def in_namespace(argv: Sequence[str], paths: Mapping[str, Path], log: Path | None, *, ids: idmap.IdMap | None = None,
                 cancel: threading.Event | None = None, capture: bool = False, timeout: float | None = 1800,
                 env: Mapping[str, str] | None = None) -> Completed:
    """Run a host tool (ostree, mkfs.ext4) in the staging namespace; ``@name@`` in ``argv`` is ``paths[name]``."""
    return Sandbox(root=None, env=dict(env or {})).run(argv, ids=ids or staging_ids(), paths=paths, log=log,
                                                       cancel=cancel, capture=capture, timeout=timeout)


def require_host_tools(*names: str) -> None:
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        raise DiskError(
            f"missing host tools: {', '.join(missing)}; install them (scripts/install-deps.sh lists the "
            "Debian packages: ostree bubblewrap fdisk dosfstools mtools e2fsprogs qemu-utils)"
        )


class ImageTools:
    """Commands from the image at ``root`` (a checkout of the commit), with host directories bound in."""

    def __init__(self, root: Path, log: Path, cancel: threading.Event | None = None,
                 ids: idmap.IdMap | None = None) -> None:
        self.root = root
        self.log = log
        self.cancel = cancel
        self.ids = ids or staging_ids()
        self.tree = Tree(root)  # the image's paths resolve inside it, never on the host
        if not self.tree.is_dir("usr/bin"):
            raise DiskError(f"{root} is not an OS tree (no usr/bin)")
        self._usr = self.tree.host_path("usr")
        etc = "etc" if self.tree.is_dir("etc") else "usr/etc" if self.tree.is_dir("usr/etc") else None
        self._etc = self.tree.host_path(etc) if etc else None

    def has(self, path: str) -> bool:
        return self.tree.exists(path)

    def sandbox(self, binds: Mapping[str, Path], ro_binds: Mapping[str, Path] | None = None) -> Sandbox:
        # the checkout is the root; its /usr and /etc read-only (the image's /usr/etc when it has no /etc)
        sb_binds = [Bind(self._usr, "/usr", ro=True)]
        if self._etc is not None:
            sb_binds.append(Bind(self._etc, "/etc", ro=True))
        sb_binds += [Bind(host, inside, ro=True) for inside, host in (ro_binds or {}).items()]
        sb_binds += [Bind(host, inside, ro=False) for inside, host in binds.items()]
        return Sandbox(root=DirRoot(self.root), binds=sb_binds, tmpfs=["/tmp", "/run", "/var"], network=False,
                       hostname="localhost",
                       env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8",
                            "OSTREE_SYSROOT_DEBUG": "mutable-deployments"})

    def run(self, argv: Sequence[str], binds: Mapping[str, Path], ro_binds: Mapping[str, Path] | None = None,
            capture: bool = False, timeout: float | None = 1800) -> Completed:
        return self.sandbox(binds, ro_binds).run(argv, ids=self.ids, log=self.log, capture=capture,
                                                 timeout=timeout, cancel=self.cancel)
