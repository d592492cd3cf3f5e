"""``--copyin`` and ``--copyout``: files between the host and a chroot (mock's flags and argument order).

The chroot is the one ``--shell`` enters: the kept root of the last build (failed, or run with
``--no-clean``), else the working chroot. Its contents may have been planted by a build or a build-
dependency's maintainer script, so:

* paths in the chroot are absolute, without ``..``, and may not lead through a symbolic link: each is
  checked *inside* the sandbox (``readlink -m`` must give the path back), where a link can only resolve
  within the chroot, never on the host;
* ``--copyin``: the host paths (the caller's own) are bound read-only into a sandbox without network and
  copied there by ns-root (``cp -r``: links inside a copied tree stay links);
* ``--copyout``: ns-root copies each path inside the sandbox into a fresh staging directory (``cp -r -P``:
  links are copied as links, never followed; hard links become separate files); the host then reads the
  staging tree with :mod:`debarchive.safeio` (nothing followed) and refuses the copy if it holds anything but
  directories and regular files (every offender named, nothing copied), then writes each file to DEST
  through a temporary name (never through a link there).
"""

from __future__ import annotations

import os
import posixpath
import shlex
import stat
import uuid
from pathlib import Path

from deb_mock.chroot.paths import CachePaths
from deb_mock.chroot.working import WorkingRoot
from deb_mock.errors import BadInput, Refused
from debarchive import safeio
from debsandbox.commands import CommandError
from debsandbox.sandbox import Bind, owned_dir, remove_tree

REFUSED = 3  # the in-sandbox script's exit code for a path it refuses
_CHECK = (
    'check() { r=$(readlink -m -- "$1"); [ "$r" = "$1" ] || { echo "deb-mock: refusing $1 in the chroot: it leads '
    'through a symbolic link (to $r)" >&2; exit 3; }; }'
)


def chroot_path(path: str) -> str:
    """``path`` normalised, if it is absolute and has no ``..``; else :class:`BadInput`."""
    if not path.startswith("/") or ".." in path.split("/"):
        raise BadInput(f"{path}: a path in the chroot must be absolute and without '..' (it may not leave the chroot)")
    norm = posixpath.normpath(path)
    return "/" + norm.lstrip("/")


def _split(args: list[str], flag: str) -> tuple[list[str], str]:
    if len(args) < 2:
        raise BadInput(f"{flag} needs at least one path and a destination (mock's order: {flag} PATH… DEST)")
    return args[:-1], args[-1]


def _run(root: WorkingRoot, binds: list[Bind], script: str, log: Path) -> None:
    try:
        root.sandbox(network=False, binds=binds).run(["sh", "-c", script], log=log)
    except CommandError as exc:
        said = [t for t in exc.tail.splitlines() if t.startswith(("deb-mock:", "cp:"))]
        why = "; ".join(said or exc.tail.strip().splitlines()[-1:])
        if exc.returncode == REFUSED or "refusing to use it" in exc.tail:  # a link planted where we bind
            raise Refused(why) from None
        raise BadInput(f"copying failed: {why} (log: {log})") from None


def copy_in(root: WorkingRoot, args: list[str], log: Path) -> None:
    """``--copyin PATH… DEST``: copy host paths into the chroot (into DEST if it is a directory there)."""
    sources, dest = _split(args, "--copyin")
    dest = chroot_path(dest)
    binds: list[Bind] = []
    lines = ["set -e", _CHECK, f"dest={shlex.quote(dest)}", 'check "$dest"', '[ -d "$dest" ] && into=1 || into=0']
    if len(sources) > 1:
        lines.append('[ "$into" = 1 ] || { echo "deb-mock: $dest is not a directory in the chroot" >&2; exit 3; }')
    for i, src in enumerate(sources):
        host = Path(src)
        if not (host.is_file() or host.is_dir()):
            raise BadInput(f"--copyin: {src}: no such file or directory on the host (or not a file or directory)")
        name = host.resolve().name
        # mount points stay in a kept upper: a name per kind, so that a file never meets an earlier directory
        inside = f"/deb-mock/copyin/{i}.{'dir' if host.is_dir() else 'file'}"
        binds.append(Bind(host.resolve(), inside, ro=True))
        target = f'"$dest"/{shlex.quote(name)}'
        lines += [
            f'if [ "$into" = 1 ]; then t={target}; else t="$dest"; mkdir -p "$(dirname "$t")"; fi',
            'check "$t"',
            f'cp -r -T -- {inside} "$t"',
        ]
    _run(root, binds, "\n".join(lines) + "\n", log)


def copy_out(root: WorkingRoot, args: list[str], paths: CachePaths, log: Path) -> list[Path]:
    """``--copyout PATH… DEST``: copy chroot paths to the host; returns the host paths written."""
    sources, dest_arg = _split(args, "--copyout")
    dest = Path(dest_arg)
    into = dest.is_dir()
    if not into and len(sources) > 1:
        raise BadInput(f"--copyout: {dest} is not a directory (needed for more than one path)")
    if not into and not dest.parent.is_dir():
        raise BadInput(f"--copyout: {dest.parent} does not exist")
    inner = [chroot_path(s) for s in sources]
    names = [posixpath.basename(p) if into else dest.name for p in inner]
    if "" in names:
        raise BadInput("--copyout: name a file or directory below / (not / itself)")
    stage = owned_dir(paths.scratch(f"copyout-{uuid.uuid4().hex[:12]}"))
    try:
        lines = ["set -e", _CHECK]
        for i, (src, name) in enumerate(zip(inner, names, strict=True)):
            lines += [
                f"s={shlex.quote(src)}",
                'check "$s"',
                '[ -e "$s" ] || { echo "deb-mock: $s: no such file or directory in the chroot" >&2; exit 3; }',
                f"mkdir /deb-mock/copyout/{i}",
                f'cp -r -P --preserve=mode,timestamps -- "$s" /deb-mock/copyout/{i}/{shlex.quote(name)}',
            ]
        _run(root, [Bind(stage, "/deb-mock/copyout", ro=False)], "\n".join(lines) + "\n", log)
        return _from_stage(stage, inner, names, dest.parent if not into else dest)
    finally:
        remove_tree(stage)


def _from_stage(stage: Path, inner: list[str], names: list[str], dest_dir: Path) -> list[Path]:
    """Check the whole staged copy (nothing followed), then write it to ``dest_dir``."""
    plan: list[tuple[int, str, int]] = []  # (staged index, path below it ("/" at the end: a directory), mode)
    offenders: list[str] = []
    for i, (src, name) in enumerate(zip(inner, names, strict=True)):
        with safeio.opened_dir(stage, str(i), label=src) as d:
            _scan(d, name, src, i, plan, offenders)
    if offenders:
        raise Refused(f"--copyout refused (nothing was copied): {'; '.join(offenders)}")
    written = []
    for i, rel, mode in plan:
        target = dest_dir / rel
        if rel.endswith("/"):
            if target.is_symlink() or (target.exists() and not target.is_dir()):
                raise BadInput(f"--copyout: {target} exists and is not a directory; nothing more was copied")
            target.mkdir(exist_ok=True)
            continue
        parent, name = posixpath.split(rel)
        with safeio.opened_dir(stage, posixpath.join(str(i), parent)) as d:
            safeio.copy_out(d, name, dest_dir / parent if parent else dest_dir)
        target.chmod(stat.S_IMODE(mode) & 0o755)
        written.append(target)
    return written


def _scan(d: int, rel: str, shown: str, index: int, plan: list[tuple[int, str, int]], offenders: list[str]) -> None:
    """Plan the copy of entry ``rel`` (its last component is in directory ``d``), depth first."""
    name = posixpath.basename(rel)
    mode = os.stat(name, dir_fd=d, follow_symlinks=False).st_mode
    if stat.S_ISDIR(mode):
        plan.append((index, rel + "/", mode))
        with safeio.opened_dir(d, name, label=shown) as sub:
            for child, _mode in safeio.entries(sub):
                _scan(sub, posixpath.join(rel, child), posixpath.join(shown, child), index, plan, offenders)
    elif not stat.S_ISREG(mode):
        offenders.append(f"{shown}: is {safeio.describe(mode)}")
    elif os.stat(name, dir_fd=d, follow_symlinks=False).st_nlink != 1:
        offenders.append(f"{shown}: is a hard link")
    else:
        plan.append((index, rel, mode))
