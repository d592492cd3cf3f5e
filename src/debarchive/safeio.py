"""Reading files that untrusted code left behind (a build's output, a root's package lists), safely.

A hostile build controls every name below the directory it wrote: any entry may be a symbolic link to a
host file, a hard link, a FIFO (opening it for reading blocks forever), a device node or a directory where
a file is expected. The host must never read or copy anything outside that tree, so everything here works
from directory handles:

* :func:`open_dir` opens a directory below a trusted base one component at a time with
  ``O_NOFOLLOW | O_DIRECTORY``: a symbolic link anywhere on the way is refused, never followed;
* :func:`open_regular` inspects an entry with ``fstatat(AT_SYMLINK_NOFOLLOW)``, refuses anything but a
  regular file with a single link, then opens it with ``O_NOFOLLOW | O_NONBLOCK`` (a FIFO swapped in
  between cannot block) and checks that the opened file is the one inspected;
* :func:`copy_out` and :func:`read_bytes` read from that file descriptor only; the copy is written to a
  temporary name in the destination directory and renamed into place (never through a link there).

Every refusal is an :class:`UnsafeEntry` naming the entry and what it is.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY


class UnsafeEntry(OSError):
    """An entry that is not what it must be (a link, a FIFO, a device...); ``name`` is its path."""

    def __init__(self, name: str, what: str) -> None:
        super().__init__(f"{name}: {what}")
        self.name = name
        self.what = what

    def __str__(self) -> str:
        return f"{self.name}: {self.what}"


def describe(mode: int) -> str:
    """What kind of file ``mode`` says this is, in words."""
    for test, word in (
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISREG, "a regular file"),
    ):
        if test(mode):
            return word
    return "of an unknown type"


def _components(rel: str | Path) -> list[str]:
    parts = [p for p in Path(rel).parts if p not in ("", "/", ".")]
    if any(p == ".." for p in parts):
        raise ValueError(f"{rel}: '..' is not allowed in a path below a directory handle")
    return parts


def open_dir(base: Path | int, rel: str | Path = "", *, label: str | None = None, create: bool = False) -> int:
    """Open directory ``rel`` below ``base`` (a trusted path or directory fd) without following any link.

    Returns a directory fd (the caller closes it). Raises :class:`UnsafeEntry` if a component is a
    symbolic link or not a directory, :class:`FileNotFoundError` if one is missing (``create``: it is made,
    mode 0755).
    """
    fd = os.open(base, _DIR_FLAGS) if not isinstance(base, int) else os.dup(base)
    walked = label if label is not None else (str(base) if not isinstance(base, int) else "")
    try:
        for part in _components(rel):
            walked = f"{walked.rstrip('/')}/{part}"
            try:
                nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                os.mkdir(part, 0o755, dir_fd=fd)
                nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    st = os.stat(part, dir_fd=fd, follow_symlinks=False)
                    what = f"is {describe(st.st_mode)}, not a directory; refusing to follow it"
                    raise UnsafeEntry(walked, what) from None
                raise
            os.close(fd)
            fd = nxt
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextmanager
def opened_dir(base: Path | int, rel: str | Path = "", *, label: str | None = None,
               create: bool = False) -> Iterator[int]:
    """:func:`open_dir` as a context manager."""
    fd = open_dir(base, rel, label=label, create=create)
    try:
        yield fd
    finally:
        os.close(fd)


def remove_entry(dir_fd: int, name: str) -> None:
    """Delete ``name`` in ``dir_fd`` (a directory with all it holds), never following a link; gone already is fine."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
        try:
            for child in os.listdir(fd):
                remove_entry(fd, child)
        finally:
            os.close(fd)
        os.rmdir(name, dir_fd=dir_fd)
    else:
        os.unlink(name, dir_fd=dir_fd)


def entries(dir_fd: int) -> list[tuple[str, int]]:
    """The names in a directory with their ``lstat`` modes (nothing followed), sorted by name."""
    out = []
    with os.scandir(dir_fd) as it:
        for e in it:
            out.append((e.name, os.stat(e.name, dir_fd=dir_fd, follow_symlinks=False).st_mode))
    return sorted(out)


def open_regular(dir_fd: int, name: str, *, label: str | None = None) -> int:
    """Open ``name`` in ``dir_fd`` for reading if and only if it is a regular file with one link.

    Refuses (:class:`UnsafeEntry`) symbolic links, FIFOs, sockets, devices, directories and files with
    more than one hard link; never blocks. Returns the fd (the caller closes it).
    """
    shown = label or name
    if "/" in name or name in ("", ".", ".."):
        raise UnsafeEntry(shown, "is not a plain file name")
    before = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    if not stat.S_ISREG(before.st_mode):
        raise UnsafeEntry(shown, f"is {describe(before.st_mode)}, not a regular file; refusing to read it")
    if before.st_nlink != 1:
        raise UnsafeEntry(
            shown, f"has {before.st_nlink} hard links (a link to another file); refusing to read it"
        )
    try:
        fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafeEntry(shown, "became a symbolic link while being opened; refusing to follow it") from None
        raise
    try:
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != (before.st_dev, before.st_ino) or not stat.S_ISREG(st.st_mode):
            raise UnsafeEntry(shown, "was replaced while being opened; refusing to read it")
        if st.st_nlink != 1:
            raise UnsafeEntry(shown, f"has {st.st_nlink} hard links (a link to another file); refusing to read it")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_bytes(dir_fd: int, name: str, *, limit: int = 64 << 20, label: str | None = None) -> bytes:
    """The contents of regular file ``name`` in ``dir_fd`` (see :func:`open_regular`), at most ``limit`` bytes."""
    fd = open_regular(dir_fd, name, label=label)
    try:
        chunks = []
        total = 0
        while chunk := os.read(fd, 1 << 20):
            total += len(chunk)
            if total > limit:
                raise UnsafeEntry(label or name, f"is larger than {limit} bytes; refusing to read it")
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_below(base: Path, rel: str | Path, *, limit: int = 64 << 20) -> bytes:
    """Read file ``rel`` below trusted directory ``base`` without following any link on the way."""
    parts = _components(rel)
    if not parts:
        raise ValueError("read_below needs a file name")
    with opened_dir(base, Path(*parts[:-1]) if len(parts) > 1 else "", label=str(base)) as d:
        return read_bytes(d, parts[-1], limit=limit, label=str(base / Path(*parts)))


def read_named_file(path: Path, limit: int) -> bytes:
    """A small file a user named (a key, a passphrase: their own path, links followed), read without blocking
    on a FIFO: :class:`UnsafeEntry` for anything but a regular file or more than ``limit`` bytes; the
    ``OSError`` of ``open`` (e.g. :class:`FileNotFoundError`) otherwise."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeEntry(str(path), "is not a regular file")
        if st.st_size > limit:
            raise UnsafeEntry(str(path), f"is larger than {limit} bytes")
        with os.fdopen(os.dup(fd), "rb") as fh:
            data = fh.read(limit + 1)
        if len(data) > limit:
            raise UnsafeEntry(str(path), f"is larger than {limit} bytes")
        return data
    finally:
        os.close(fd)


def copy_out(dir_fd: int, name: str, dest_dir: Path, *, label: str | None = None) -> tuple[str, int]:
    """Copy regular file ``name`` from ``dir_fd`` to ``dest_dir/name``; return (sha256, size).

    The source is opened with :func:`open_regular`; the copy goes to a fresh temporary file in
    ``dest_dir`` (``O_EXCL``) and is renamed over ``dest_dir/name``, so a link planted at the destination
    is replaced, never written through.
    """
    src = open_regular(dir_fd, name, label=label)
    tmp = dest_dir / f".{name}.part"
    try:
        tmp.unlink(missing_ok=True)
        out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        h = hashlib.sha256()
        size = 0
        try:
            while chunk := os.read(src, 1 << 20):
                h.update(chunk)
                size += len(chunk)
                view = memoryview(chunk)
                while view:
                    n = os.write(out, view)
                    view = view[n:]
        finally:
            os.close(out)
        os.replace(tmp, dest_dir / name)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        os.close(src)
    return h.hexdigest(), size
