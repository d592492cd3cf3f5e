"""Apply OCI image layers (tar, optionally gzip) to a directory, in order, with whiteouts.

Layers are hostile input: a member's name must be relative and free of ``..``; a member never reaches
outside the tree through a symlink an earlier member or layer planted (every directory is opened with
O_NOFOLLOW relative to its parent's descriptor); hard links point inside the tree. Owners, modes (set-id bits
included) and extended attributes (PAX ``SCHILY.xattr.*``) are applied as the layer says, so that an
``ostree commit`` of the result has the image's content. Whiteouts (OCI image spec, "Whiteouts"):
``.wh.NAME`` deletes NAME of the lower layers, ``.wh..wh..opq`` empties its directory of them; both are
applied before the layer's own entries."""

from __future__ import annotations

import errno
import os
import stat
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import ClientError

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class LayerError(ClientError):
    """A layer that cannot be applied safely (the message names the layer and the member)."""


def member_parts(name: str) -> list[str]:
    """The components of a member name; LayerError for absolute names, ``..``, NUL or an empty name."""
    if "\0" in name:
        raise ValueError("NUL in the name")
    if name.startswith("/"):
        raise ValueError("absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise ValueError("'..' in the path")
    if not parts:
        raise ValueError("empty name")
    return parts


def is_root(m: tarfile.TarInfo) -> bool:
    """The tree's own top directory (``./``): its metadata is the deployment's, not the layer's."""
    return m.isdir() and m.name.strip("./") == "" and not m.name.startswith("/")


def _stat(dirfd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dirfd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def remove(dirfd: int, name: str) -> None:
    """Delete ``name`` in ``dirfd`` (a directory with its contents), never following a symlink."""
    st = _stat(dirfd, name)
    if st is None:
        return
    if stat.S_ISDIR(st.st_mode):
        fd = os.open(name, DIR_FLAGS, dir_fd=dirfd)
        try:
            for child in os.listdir(fd):
                remove(fd, child)
        finally:
            os.close(fd)
        os.rmdir(name, dir_fd=dirfd)
    else:
        os.unlink(name, dir_fd=dirfd)


@contextmanager
def open_dir(rootfd: int, parts: list[str], create: bool) -> Iterator[int]:
    """A descriptor of the directory ``parts`` under ``rootfd``, walked without following symlinks."""
    fd = os.dup(rootfd)
    try:
        for p in parts:
            try:
                nxt = os.open(p, DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                os.mkdir(p, 0o755, dir_fd=fd)
                nxt = os.open(p, DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise ValueError(f"{'/'.join(parts)} goes through {p!r}, which is not a directory "
                                     "(a symlink or a file): refused") from None
                raise
            os.close(fd)
            fd = nxt
        yield fd
    finally:
        os.close(fd)


def xattrs_of(member: tarfile.TarInfo) -> dict[str, bytes]:
    prefix = "SCHILY.xattr."
    return {k[len(prefix):]: v.encode("utf-8", "surrogateescape")
            for k, v in member.pax_headers.items() if k.startswith(prefix)}


def _set_meta(dirfd: int, name: str, m: tarfile.TarInfo, fd: int | None = None) -> None:
    if fd is not None:
        os.fchown(fd, m.uid, m.gid)
        os.fchmod(fd, stat.S_IMODE(m.mode))  # after chown: chown clears set-id bits
        for key, value in xattrs_of(m).items():
            os.setxattr(fd, key, value)
        return
    os.chown(name, m.uid, m.gid, dir_fd=dirfd, follow_symlinks=False)
    for key, value in xattrs_of(m).items():  # on the symlink itself (rare; Linux allows only trusted./security.)
        os.setxattr(f"/proc/self/fd/{dirfd}/{name}", key, value, follow_symlinks=False)


def _extract(tar: tarfile.TarFile, m: tarfile.TarInfo, rootfd: int) -> None:
    parts = member_parts(m.name)
    with open_dir(rootfd, parts[:-1], create=True) as dfd:
        name = parts[-1]
        old = _stat(dfd, name)
        if m.isdir():
            if old is not None and not stat.S_ISDIR(old.st_mode):
                remove(dfd, name)
                old = None
            if old is None:
                os.mkdir(name, 0o700, dir_fd=dfd)
            fd = os.open(name, DIR_FLAGS, dir_fd=dfd)
            try:
                _set_meta(dfd, name, m, fd)
            finally:
                os.close(fd)
            return
        if old is not None:
            remove(dfd, name)
        if m.isreg():
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                         dir_fd=dfd)
            try:
                src = tar.extractfile(m)
                if src is not None:
                    while chunk := src.read(1 << 20):
                        os.write(fd, chunk)
                _set_meta(dfd, name, m, fd)
            finally:
                os.close(fd)
        elif m.issym():
            os.symlink(m.linkname, name, dir_fd=dfd)
            _set_meta(dfd, name, m)
        elif m.islnk():
            target = member_parts(m.linkname)
            with open_dir(rootfd, target[:-1], create=False) as sfd:
                st = _stat(sfd, target[-1])
                if st is None or stat.S_ISDIR(st.st_mode):
                    raise ValueError(f"hard link to {m.linkname!r}, which is not a file of the tree")
                os.link(target[-1], name, src_dir_fd=sfd, dst_dir_fd=dfd, follow_symlinks=False)
        elif m.ischr() or m.isblk() or m.isfifo():
            kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK if m.isblk() else stat.S_IFIFO
            os.mknod(name, kind | 0o600, os.makedev(m.devmajor, m.devminor), dir_fd=dfd)
            os.chown(name, m.uid, m.gid, dir_fd=dfd, follow_symlinks=False)
            os.chmod(name, stat.S_IMODE(m.mode), dir_fd=dfd)
        else:
            raise ValueError(f"unsupported member type {m.type!r}")


def _whiteouts(path: str) -> tuple[list[list[str]], list[list[str]]]:
    """(opaque directories, whited-out paths) of one layer, read in a first pass."""
    opaque: list[list[str]] = []
    gone: list[list[str]] = []
    with tarfile.open(path, "r|*") as tar:
        for m in tar:
            if is_root(m):
                continue
            try:
                parts = member_parts(m.name)
            except ValueError as exc:
                raise LayerError(f"layer {path}: member {m.name!r}: {exc}") from None
            base = parts[-1]
            if base == OPAQUE:
                opaque.append(parts[:-1])
            elif base.startswith(WHITEOUT):
                target = base[len(WHITEOUT):]
                if target in ("", ".", ".."):
                    raise LayerError(f"layer {path}: bad whiteout {m.name!r}")
                gone.append([*parts[:-1], target])
    return opaque, gone


def apply_layer(path: str, root: str) -> int:
    """Apply one layer file to ``root``; returns the number of entries written."""
    try:
        opaque, gone = _whiteouts(path)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise LayerError(f"layer {path} is not a readable tar archive: {exc}") from None
    rootfd = os.open(root, DIR_FLAGS)
    count = 0
    try:
        for parts in opaque:
            try:
                with open_dir(rootfd, parts, create=False) as dfd:
                    for child in os.listdir(dfd):
                        remove(dfd, child)
            except (FileNotFoundError, ValueError):
                continue  # nothing below to hide (or not a directory of the tree)
        for parts in gone:
            try:
                with open_dir(rootfd, parts[:-1], create=False) as dfd:
                    remove(dfd, parts[-1])
            except (FileNotFoundError, ValueError):
                continue
        with tarfile.open(path, "r|*") as tar:
            for m in tar:
                base = m.name.rstrip("/").rsplit("/", 1)[-1]
                if is_root(m) or base.startswith(WHITEOUT):
                    continue
                try:
                    _extract(tar, m, rootfd)
                except ValueError as exc:
                    raise LayerError(f"layer {path}: member {m.name!r}: {exc}") from None
                count += 1
    except (tarfile.TarError, EOFError) as exc:
        raise LayerError(f"layer {path} is damaged: {exc}") from None
    except OSError as exc:
        raise LayerError(f"layer {path}: cannot write into {root}: {exc}") from None
    finally:
        os.close(rootfd)
    return count
