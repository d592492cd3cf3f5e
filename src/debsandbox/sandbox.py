"""Run commands in a sandbox: an overlay (or plain) root, namespaces, no network by default.

The heavy lifting is in :mod:`debsandbox.nsexec`, a separate process so that forking and unsharing never
happens in the caller (which may have threads). This module builds its specification and runs it through
:func:`debsandbox.commands.run`, so logs, timeouts and cancellation work as for any other command.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from debsandbox import idmap
from debsandbox.commands import Completed, run

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# what a networked sandbox takes from the host to resolve names (a chroot has no resolver set-up of its own)
RESOLVER_FILES = ("/etc/resolv.conf", "/etc/hosts")
TMPFS_SIZE = re.compile(r"^[0-9]+[kKmMgG%]?$")  # tmpfs's size= (bytes, k, m, g, or a percentage of RAM)


@dataclass(frozen=True)
class Bind:
    src: Path
    dst: str
    ro: bool = True


def network_binds() -> list[Bind]:
    """The host's resolver configuration, bound read-only at the same paths (links resolved on the host)."""
    return [Bind(Path(f).resolve(), f, ro=True) for f in RESOLVER_FILES if Path(f).exists()]


@dataclass(frozen=True)
class OverlayRoot:
    """``lower`` layers (top first) under a writable ``upper`` (with overlayfs's ``work`` dir)."""

    lower: tuple[Path, ...]
    upper: Path
    work: Path


@dataclass(frozen=True)
class DirRoot:
    """A plain directory used as the root, read-write."""

    dir: Path


@dataclass
class Sandbox:
    """Where and how a command runs. With ``network`` and a root of its own, the host's resolver files
    (:func:`network_binds`) are bound in after ``binds``."""

    root: OverlayRoot | DirRoot | None = None
    binds: list[Bind] = field(default_factory=list)
    tmpfs: list[str] = field(default_factory=list)
    tmpfs_size: dict[str, str] = field(default_factory=dict)  # a tmpfs mount point -> its size= (e.g. "2G")
    network: bool = False
    uid: int = 0
    gid: int = 0
    groups: list[int] = field(default_factory=list)
    cwd: str = "/"
    env: dict[str, str] = field(default_factory=dict)
    hostname: str = "localhost"
    umask: int | None = 0o022
    # capabilities ns-root keeps beyond a root container's usual set (e.g. "SYS_ADMIN" to mount)
    cap_add: tuple[str, ...] = ()
    # let the command make user namespaces of its own (refused by default: a large kernel attack surface)
    nested_userns: bool = False

    def spec(self, argv: Sequence[str], ids: idmap.IdMap, paths: Mapping[str, Path] | None = None) -> dict[str, Any]:
        """The launcher's specification. Host paths are passed as ``@name@`` tokens (see nsexec)."""
        opened: dict[str, str] = {k: str(v) for k, v in (paths or {}).items()}
        readonly: list[str] = []

        def token(name: str, path: Path, ro: bool = False) -> str:
            opened[name] = str(path)
            if ro:
                readonly.append(name)
            return f"@{name}@"

        root: dict[str, Any] | None
        if isinstance(self.root, OverlayRoot):
            if self.root.upper.parent != self.root.work.parent:
                raise ValueError("overlay upper and work directories must be siblings (one mount)")
            parent = token("overlay", self.root.upper.parent)
            root = {
                "lower": [token(f"lower{i}", p, ro=True) for i, p in enumerate(self.root.lower)],
                "upper": f"{parent}/{self.root.upper.name}",
                "work": f"{parent}/{self.root.work.name}",
            }
        elif isinstance(self.root, DirRoot):
            root = {"dir": token("rootdir", self.root.dir)}
        else:
            root = None
        for t, size in self.tmpfs_size.items():
            if not TMPFS_SIZE.match(size):
                raise ValueError(f"tmpfs {t}: not a size: {size!r} (a number with k, m, g or %)")
        all_binds = self.binds + (network_binds() if self.network and self.root is not None else [])
        binds = [{"src": token(f"bind{i}", b.src, b.ro), "dst": b.dst, "ro": b.ro} for i, b in enumerate(all_binds)]
        env = {"PATH": DEFAULT_PATH, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "HOME": "/root", "TERM": "dumb"}
        env.update(self.env)
        return {
            "idmap": {
                "uids": [[r.inner, r.outer, r.count] for r in ids.uids],
                "gids": [[r.inner, r.outer, r.count] for r in ids.gids],
            },
            "root": root,
            "paths": opened,
            "ro_paths": readonly,
            "binds": binds,
            "tmpfs": list(self.tmpfs),
            "tmpfs_size": {k: v for k, v in self.tmpfs_size.items() if k in self.tmpfs},
            "network": self.network,
            "uid": self.uid,
            "gid": self.gid,
            "groups": self.groups,
            "cwd": self.cwd,
            "env": env,
            "hostname": self.hostname,
            "umask": self.umask,
            "cap_add": list(self.cap_add),
            "nested_userns": self.nested_userns,
            "argv": list(argv),
        }

    def write_spec(self, argv: Sequence[str], ids: idmap.IdMap, paths: Mapping[str, Path] | None = None) -> str:
        if isinstance(self.root, OverlayRoot):
            for d in (self.root.upper, self.root.work):
                owned_dir(d, ids)
        with tempfile.NamedTemporaryFile("w", prefix="sandbox-", suffix=".json", delete=False) as fh:
            json.dump(self.spec(argv, ids, paths), fh)
            return fh.name

    def run(
        self,
        argv: Sequence[str],
        *,
        ids: idmap.IdMap | None = None,
        paths: Mapping[str, Path] | None = None,
        **kwargs: Any,
    ) -> Completed:
        """Run ``argv`` inside the sandbox; keyword arguments go to :func:`debsandbox.commands.run`.

        ``paths`` names host paths the command needs (``@name@`` in ``argv`` becomes a path that works
        inside the namespace even where ns-root could not traverse the real path).
        """
        ids = ids or idmap.current()
        log = kwargs.get("log")
        if isinstance(log, Path):
            log.parent.mkdir(parents=True, exist_ok=True)
            with open(log, "a", encoding="utf-8") as fh:
                where = "host filesystem" if self.root is None else "sandbox root"
                net = "network" if self.network else "no network"
                fh.write(f"+ [{where}, uid {self.uid}, {net}] {shlex.join(argv)}\n")
        spec_path = self.write_spec(argv, ids, paths)
        try:
            return run(launcher_argv(spec_path), env=launcher_env(), **kwargs)
        finally:
            os.unlink(spec_path)


def launcher_argv(spec_path: str) -> list[str]:
    """The command that runs a sandbox from a written specification (see :meth:`Sandbox.write_spec`)."""
    return [sys.executable, "-m", "debsandbox.nsexec", spec_path]


def launcher_env() -> dict[str, str]:
    """The launcher's environment: ours, with this package importable however it was installed."""
    env = dict(os.environ)
    here = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in [here, env.get("PYTHONPATH", "")] if p)
    return env


def owned_dir(path: Path, ids: idmap.IdMap | None = None, mode: int = 0o755) -> Path:
    """Create ``path`` (and parents) so that ns-root can write in it."""
    ids = ids or idmap.current()
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        st = path.stat()
        if st.st_uid != ids.root_uid or st.st_gid != ids.root_gid:
            os.chown(path, ids.root_uid, ids.root_gid)
        path.chmod(mode)
    return path


def remove_tree(path: Path, ids: idmap.IdMap | None = None) -> None:
    """Remove a tree that sandboxed processes wrote (owned by mapped ids). Missing paths are fine."""
    if not path.exists() and not path.is_symlink():
        return
    if os.geteuid() == 0:
        _make_writable_rmtree(path)
        return
    # a normal user cannot remove files owned by its subordinate ids: do it inside the namespace
    Sandbox().run(["rm", "-rf", "--one-file-system", f"@parent@/{path.name}"], ids=ids, paths={"parent": path.parent})


def _make_writable_rmtree(path: Path) -> None:
    def onerror(func: Any, p: str, _exc: Any) -> None:
        # never chmod through a link the sandbox planted: only real directories get their mode back
        for d in (os.path.dirname(p), p):
            try:
                if not os.path.islink(d) and os.path.isdir(d):
                    os.chmod(d, 0o755)
            except OSError:
                pass
        func(p)

    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, onerror=onerror)
    else:
        path.unlink()
