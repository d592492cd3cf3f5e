"""The pool of an apt repository: safe relative paths, Debian's pool layout, atomic placement of files."""

from __future__ import annotations

import errno
import os
import re
import shutil
import tempfile
from pathlib import Path

from debarchive.digest import sha256_file

PKG_RE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
VERSION_RE = re.compile(r"^(?:[0-9]+:)?[0-9A-Za-z][0-9A-Za-z.+~-]*$")
ARCH_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_WORD_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
_PATH_PART_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+~_-]*$")
_SAFE_PATH_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+~_-]*(?:/[A-Za-z0-9][A-Za-z0-9.+~_-]*)*\Z")


class RepoError(ValueError):
    """Bad input for a repository (unsafe name, unreadable package, conflicting entries). Says what and where."""


def check_relative_path(filename: str, what: str = "file name") -> str:
    """Return ``filename`` if it is a safe relative path (no '..', not absolute, plain characters only)."""
    if _SAFE_PATH_RE.match(filename):  # fast path; the checks below explain what is wrong
        return filename
    if not filename or filename.startswith("/") or "\\" in filename:
        raise RepoError(f"unsafe {what} {filename!r}: give a relative path like 'pool/main/h/hello/hello_1.0_all.deb'")
    for part in filename.split("/"):
        if part in ("", ".", ".."):
            raise RepoError(f"unsafe {what} {filename!r}: empty, '.' or '..' path components are not allowed")
        if not _PATH_PART_RE.match(part):
            raise RepoError(
                f"unsafe {what} {filename!r}: component {part!r} may only use letters, digits and . + ~ _ - "
                "and must start with a letter or digit"
            )
    return filename


def check_word(value: str, what: str) -> str:
    if not _WORD_RE.match(value or ""):
        raise RepoError(f"invalid {what} {value!r}: use letters, digits and . _ + - (no '/' or spaces)")
    return value


def pool_path(source: str, filename: str, component: str = "main") -> str:
    """Debian's pool location of ``filename`` built from ``source``: ``pool/main/h/hello/<file>``,
    ``pool/main/libf/libfoo/<file>`` for sources starting with ``lib``."""
    if not PKG_RE.match(source or ""):
        raise RepoError(f"invalid source package name {source!r}: Debian names use a-z 0-9 + - . (2+ characters)")
    check_word(component, "component")
    if "/" in filename:
        raise RepoError(f"pool_path() takes a bare file name, not a path: {filename!r}")
    check_relative_path(filename)
    prefix = source[:4] if source.startswith("lib") and len(source) > 3 else source[0]
    return f"pool/{component}/{prefix}/{source}/{filename}"


def add_to_pool(root: Path, src: Path, filename: str) -> Path:
    """Put ``src`` at ``root/filename`` atomically: hard link if possible, copy otherwise.

    Refuses unsafe paths. If the destination exists with the same content nothing changes; a different
    file under the same name is refused (pool files are immutable: clients cache them by name).
    """
    check_relative_path(filename)
    src = Path(src)
    if not src.is_file():
        raise RepoError(f"cannot add {src} to the pool: it is not a readable file")
    dest = Path(root) / filename
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        return _same_or_refuse(root, src, dest, filename)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        tmp.unlink()
        try:
            os.link(src, tmp)
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                raise
            shutil.copyfile(src, tmp)
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o644)
        try:
            os.link(tmp, dest)  # never replaces: another writer may have put a file there meanwhile
        except FileExistsError:
            return _same_or_refuse(root, src, dest, filename)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def _same_or_refuse(root: Path, src: Path, dest: Path, filename: str) -> Path:
    if dest.samefile(src) or sha256_file(dest) == sha256_file(src):
        return dest
    raise RepoError(
        f"{filename} already exists in the pool of {root} with different content; pool files are immutable "
        "(bump the version to publish a different file)"
    )
