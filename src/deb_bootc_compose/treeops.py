"""Operations on a root filesystem tree: run a command inside it (in a user namespace), remove it safely,
read its dpkg status.

The tree is made and changed by unprivileged code only: mmdebstrap, maintainer scripts, dracut, useradd and
postprocess scripts run in a user namespace whose root ("ns-root") is the first id of root's subordinate range
(``/etc/subuid``, e.g. host uid 100000), never with the host's capabilities. So on disk every file of the tree
belongs to a subordinate id: inner uid N is host uid ``base + N``. The compose's own Python edits (os-release,
apt sources, tmpfiles.d...) write as the host's root; :func:`adopt_host_writes` gives those files the ids they
mean inside the namespace before any in-tree command, the commit or the OCI writer sees them.
"""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

from deb_bootc_compose.errors import ComposeError
from debsandbox import idmap
from debsandbox.commands import Completed, run
from debsandbox.sandbox import Bind, DirRoot, Sandbox

SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def mounts_under(path: Path) -> list[Path]:
    """Mount points at or below ``path`` (from /proc/self/mountinfo), deepest first."""
    root = os.path.realpath(path)
    found = []
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            mp = line.split()[4].encode().decode("unicode_escape")
            if mp == root or mp.startswith(root.rstrip("/") + "/"):
                found.append(Path(mp))
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def remove_tree(path: Path) -> None:
    """Remove ``path`` recursively, never through a mount point (unmounting what is left first)."""
    if not path.exists() and not path.is_symlink():
        return
    for mp in mounts_under(path):
        run(["umount", "--lazy", mp], check=False)
    left = mounts_under(path)
    if left:
        raise ComposeError(f"refusing to remove {path}: still mounted there: {', '.join(map(str, left))}")
    if path.is_symlink() or path.is_file():
        path.unlink()
        return
    run(["rm", "-rf", "--one-file-system", "--", path])


def tree_ids() -> idmap.IdMap:
    """The id map of the user namespace every tree is made and read in (root's subordinate range)."""
    try:
        return idmap.current()
    except idmap.IdMapError as exc:
        raise ComposeError(
            f"composing needs a subordinate id range for the user namespace the image tree is made in: {exc}"
        ) from exc


def _mapped(value: int, ranges: tuple[idmap.IdRange, ...]) -> int | None:
    """The inner id of host id ``value``, or None when the namespace does not map it."""
    for r in ranges:
        if r.outer <= value < r.outer + r.count:
            return r.inner + value - r.outer
    return None


def inner_uid(ids: idmap.IdMap, uid: int) -> int:
    """The uid a file owned by host ``uid`` has inside the tree's namespace (host writes not yet adopted:
    ``uid`` itself, which is what the compose meant)."""
    inner = _mapped(uid, ids.uids)
    return uid if inner is None else inner


def inner_gid(ids: idmap.IdMap, gid: int) -> int:
    inner = _mapped(gid, ids.gids)
    return gid if inner is None else inner


def _check_tree(tree: Path, ids: idmap.IdMap) -> None:
    """Refuse anything but a tree the namespace made: never the host's root, never a directory the host owns
    (a wrong argument here would hand host files to the subordinate ids)."""
    if not isinstance(tree, Path) or os.path.realpath(tree) == "/":
        raise ComposeError(f"refusing to treat {tree!r} as an image tree: it is the host's root or not a path")
    st = os.lstat(tree)
    if not stat.S_ISDIR(st.st_mode) or _mapped(st.st_uid, ids.uids) is None:
        raise ComposeError(f"refusing to treat {tree} as an image tree: not a directory owned by the user "
                           f"namespace the tree is made in (owner {st.st_uid})")


def adopt_host_writes(tree: Path, ids: idmap.IdMap | None = None) -> int:
    """Give every entry of ``tree`` that the host wrote (owned by an id the namespace does not map) the host
    id of the inner id it carries: a file the compose wrote as root becomes ns-root's, a file it chowned to
    uid 1000 becomes ``base + 1000``. Never follows a symlink (directory handles, ``AT_SYMLINK_NOFOLLOW``);
    set-id bits that chown clears are put back. Returns how many entries changed."""
    ids = ids or tree_ids()
    _check_tree(tree, ids)
    changed = 0

    def adopt(name: str, dir_fd: int | None) -> None:
        nonlocal changed
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        uid_ok = _mapped(st.st_uid, ids.uids) is not None
        gid_ok = _mapped(st.st_gid, ids.gids) is not None
        if uid_ok and gid_ok:
            return
        try:
            uid = st.st_uid if uid_ok else ids.host_uid(st.st_uid)
            gid = st.st_gid if gid_ok else ids.host_gid(st.st_gid)
        except idmap.IdMapError as exc:
            where = name if dir_fd is None else f"{name} (in {tree})"
            raise ComposeError(f"{where}: owner {st.st_uid}:{st.st_gid} cannot be mapped into the image: {exc}"
                               ) from exc
        os.chown(name, uid, gid, dir_fd=dir_fd, follow_symlinks=False)
        if stat.S_ISREG(st.st_mode) and st.st_mode & (stat.S_ISUID | stat.S_ISGID):
            os.chmod(name, stat.S_IMODE(st.st_mode), dir_fd=dir_fd)
        changed += 1

    adopt(os.fspath(tree), None)
    for _root, dirs, files, root_fd in os.fwalk(tree, follow_symlinks=False):
        for name in dirs + files:
            adopt(name, root_fd)
    return changed


def in_tree(
    tree: Path,
    argv: list[str],
    *,
    log: Path | None = None,
    network: bool = False,
    binds: list[tuple[Path, str]] | None = None,
    stdin: bytes | None = None,
    env: dict[str, str] | None = None,
    cancel: threading.Event | None = None,
    timeout: float | None = 3600,
    check: bool = True,
    capture: bool = False,
) -> Completed:
    """Run ``argv`` with ``tree`` as its root in the debsandbox launcher: user namespace (ns-root is a
    subordinate id, no capability on the host), own mount/pid/ipc/uts namespaces, /proc, a minimal /dev,
    tmpfs /tmp and /run, /sys read-only, no network unless asked. ``binds`` are read-only."""
    ids = tree_ids()
    adopt_host_writes(tree, ids)  # also refuses the host's root and directories the namespace did not make
    sb_binds = [Bind(Path(src), dest, ro=True) for src, dest in binds or []]
    if Path("/sys").is_dir():
        sb_binds.insert(0, Bind(Path("/sys"), "/sys", ro=True))
    sandbox = Sandbox(
        root=DirRoot(tree), binds=sb_binds, tmpfs=["/tmp", "/run"], network=network, hostname="localhost",
        env={"PATH": SAFE_PATH, "LC_ALL": "C.UTF-8", "HOME": "/root", "DEBIAN_FRONTEND": "noninteractive",
             **(env or {})},
    )
    return sandbox.run(argv, ids=ids, log=log, stdin=stdin, cancel=cancel, timeout=timeout, check=check,
                       capture=capture)


def dpkg_installed(status: str) -> set[tuple[str, str]]:
    """(name, version) of every package whose dpkg status is 'install ok installed', from the text of a
    dpkg status file (read it with :class:`deb_bootc_compose.intree.Tree`: it lies in a tree)."""
    out: set[tuple[str, str]] = set()
    name = version = state = ""
    for line in [*status.splitlines(), ""]:
        if line == "":
            if name and state == "install ok installed":
                out.add((name, version))
            name = version = state = ""
        elif line.startswith("Package: "):
            name = line[9:].strip()
        elif line.startswith("Version: "):
            version = line[9:].strip()
        elif line.startswith("Status: "):
            state = line[8:].strip()
    return out
