"""Operations on a root filesystem tree: run a command inside it (bubblewrap), remove it safely, read its
dpkg status."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

from deb_bootc_compose.phases.base import ComposeError
from debsandbox.commands import Completed, run

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
    """Run ``argv`` with ``tree`` as its root in bubblewrap (its own /proc, /dev, /tmp, /run; no network)."""
    if shutil.which("bwrap") is None:
        raise ComposeError("bubblewrap (bwrap) is needed to run commands inside the tree: apt-get install bubblewrap")
    bw = ["bwrap", "--bind", str(tree), "/", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--tmpfs", "/run",
          "--unshare-ipc", "--unshare-pid", "--unshare-uts", "--hostname", "localhost", "--die-with-parent",
          "--clearenv", "--setenv", "PATH", SAFE_PATH, "--setenv", "LC_ALL", "C.UTF-8", "--setenv", "HOME", "/root",
          "--setenv", "DEBIAN_FRONTEND", "noninteractive"]
    if Path("/sys").is_dir():
        bw += ["--ro-bind", "/sys", "/sys"]
    if not network:
        bw.append("--unshare-net")
    for k, v in (env or {}).items():
        bw += ["--setenv", k, v]
    for src, dest in binds or []:
        bw += ["--ro-bind", str(src), dest]
    return run([*bw, *argv], log=log, stdin=stdin, cancel=cancel, timeout=timeout, check=check, capture=capture)


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
