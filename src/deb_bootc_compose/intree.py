"""Edit an image tree from the host without ever following a link out of it.

Packages (their maintainer scripts, their shipped files) decide what the tree holds, and they may plant
``etc/machine-id -> /root/.bashrc`` or ``etc/apt/sources.list.d -> /etc/apt/sources.list.d``. Every
host-side read or write into a tree goes through :class:`Tree`, which resolves paths the way the image
itself would see them (as in a chroot: an absolute link starts again at the tree's root, ``..`` stops at
it), never on the host:

* with ``openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`` (Linux 5.6+), the kernel's own "resolve as if
  this directory were /";
* else by walking the path one component at a time (``O_PATH | O_NOFOLLOW``), reading each link and
  resolving its target again from the tree's root, so the result is the same.

Writes never go *through* the final component: :meth:`Tree.write_bytes` writes a new file next to it and
renames it over the name, so a planted link at the destination is replaced by the file, not followed.
Reads check that what was opened is a regular file (a FIFO or a device node planted where a file is
expected is refused, not read). Directories along the way are followed inside the tree.

Paths are given relative to the tree ("etc/machine-id"; a leading "/" is allowed and means the same).
Errors are :class:`OSError` naming the host path the tree path stands for.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import platform
import secrets
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_IN_ROOT = 0x10
# openat2 has the same number on every architecture with the generic syscall table (added in Linux 5.6)
OPENAT2_NR = {"x86_64": 437, "aarch64": 437, "riscv64": 437, "ppc64le": 437, "s390x": 437, "armv7l": 437,
              "i686": 437}
MAX_LINK_HOPS = 40
DEFAULT_READ_LIMIT = 256 << 20


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_libc: ctypes.CDLL | None = None
_openat2_works: bool | None = None


def _syscall_openat2(dirfd: int, path: str, flags: int, mode: int, resolve: int) -> int:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.syscall.restype = ctypes.c_long
    nr = OPENAT2_NR.get(platform.machine())
    if nr is None:
        raise OSError(errno.ENOSYS, "openat2 is not known on this architecture")
    how = _OpenHow(flags, mode, resolve)
    fd = _libc.syscall(ctypes.c_long(nr), ctypes.c_int(dirfd), ctypes.c_char_p(os.fsencode(path)),
                       ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how)))
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return int(fd)


def openat2_available() -> bool:
    """True when the kernel has openat2 with RESOLVE_IN_ROOT (checked once)."""
    global _openat2_works
    if _openat2_works is None:
        try:
            fd = _syscall_openat2(-100, "/", os.O_PATH | os.O_CLOEXEC, 0, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
        except OSError:
            _openat2_works = False
        else:
            os.close(fd)
            _openat2_works = True
    return _openat2_works


def _parts(rel: str | os.PathLike[str]) -> list[str]:
    return [p for p in os.fspath(rel).split("/") if p not in ("", ".")]


class Tree:
    """A root filesystem tree on the host, edited only through paths resolved inside it.

    ``use_openat2=False`` forces the component-by-component walk (used by the tests and on old kernels).
    ``new_owner`` (uid, gid), when given, owns the files, directories and links this object creates
    (replaced files keep the owner of the file they replace).
    """

    def __init__(self, root: Path | str, *, use_openat2: bool | None = None,
                 new_owner: tuple[int, int] | None = None) -> None:
        self.root = Path(root)
        self.real_root = os.path.realpath(self.root)
        self.use_openat2 = openat2_available() if use_openat2 is None else use_openat2
        self.new_owner = new_owner
        self._fd: int | None = os.open(self.real_root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)

    # ---- lifetime ----
    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> Tree:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    @property
    def fd(self) -> int:
        if self._fd is None:
            raise ValueError(f"tree {self.root} is closed")
        return self._fd

    def host(self, rel: str | os.PathLike[str]) -> str:
        """The host path ``rel`` names if nothing on the way is a link (for messages only)."""
        return os.path.join(self.real_root, *_parts(rel))

    def _err(self, exc: OSError, rel: str | os.PathLike[str]) -> OSError:
        if isinstance(exc.filename, str) and exc.filename.endswith(f" (in tree {self.root})"):
            return exc
        message = exc.strerror or os.strerror(exc.errno or 0)
        return OSError(exc.errno, message, f"{self.host(rel)} (in tree {self.root})")

    @contextlib.contextmanager
    def _errors(self, rel: str | os.PathLike[str]) -> Iterator[None]:
        """OSErrors inside name the tree path (as a host path) and the tree."""
        try:
            yield
        except OSError as exc:
            raise self._err(exc, rel) from None

    # ---- resolution ----
    def _walk(self, parts: list[str], follow_final: bool) -> int:
        """O_PATH fd of ``parts`` resolved inside the tree, one component at a time (the fallback)."""
        stack = [os.dup(self.fd)]
        todo = list(parts)
        hops = 0
        try:
            while todo:
                part = todo.pop(0)
                if part in ("", "."):
                    continue
                if part == "..":
                    if len(stack) > 1:
                        os.close(stack.pop())
                    continue
                fd = os.open(part, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=stack[-1])
                st = os.fstat(fd)
                if stat.S_ISLNK(st.st_mode) and (todo or follow_final):
                    os.close(fd)
                    hops += 1
                    if hops > MAX_LINK_HOPS:
                        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP))
                    target = os.readlink(part, dir_fd=stack[-1])
                    if target.startswith("/"):
                        while len(stack) > 1:
                            os.close(stack.pop())
                    todo = [p for p in target.split("/") if p] + todo
                    continue
                if todo and not stat.S_ISDIR(st.st_mode):
                    os.close(fd)
                    raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
                stack.append(fd)
            return stack.pop()
        finally:
            for fd in stack:
                os.close(fd)

    def _open(self, rel: str | os.PathLike[str], flags: int, follow: bool = True) -> int:
        """Open ``rel`` (resolved inside the tree) with ``flags``; no O_CREAT here (see write_bytes)."""
        parts = _parts(rel)
        flags |= os.O_CLOEXEC
        try:
            if self.use_openat2:
                for _ in range(10):
                    try:
                        return _syscall_openat2(self.fd, "/".join(parts) or ".",
                                                flags | (0 if follow else os.O_NOFOLLOW), 0,
                                                RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
                    except OSError as exc:
                        if exc.errno != errno.EAGAIN:  # a concurrent rename: the kernel asks to retry
                            raise
                raise OSError(errno.EAGAIN, os.strerror(errno.EAGAIN))
            pfd = self._walk(parts, follow_final=follow)
            if flags & os.O_PATH:
                return pfd
            try:
                if stat.S_ISLNK(os.fstat(pfd).st_mode):
                    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP))
                # reopen the object itself (our own host-side use of the procfs link, not a path of the tree)
                return os.open(f"/proc/self/fd/{pfd}", flags & ~os.O_NOFOLLOW)
            finally:
                os.close(pfd)
        except OSError as exc:
            raise self._err(exc, rel) from None

    @contextlib.contextmanager
    def _parent(self, rel: str | os.PathLike[str]) -> Iterator[tuple[int, str]]:
        """(O_PATH fd of the parent directory, resolved inside the tree; the final name, not resolved)."""
        parts = _parts(rel)
        if not parts or parts[-1] == "..":
            raise self._err(OSError(errno.EINVAL, "a tree path that names an entry is needed"), rel)
        fd = self._open("/".join(parts[:-1]), os.O_PATH | os.O_DIRECTORY)
        try:
            yield fd, parts[-1]
        finally:
            os.close(fd)

    def resolve(self, rel: str | os.PathLike[str] = "") -> str:
        """``rel`` with every link resolved inside the tree, relative to the root ("" for the root)."""
        fd = self._open(rel, os.O_PATH)
        try:
            real = os.readlink(f"/proc/self/fd/{fd}")
        finally:
            os.close(fd)
        if real == self.real_root:
            return ""
        if not real.startswith(self.real_root.rstrip("/") + "/"):
            raise self._err(OSError(errno.EXDEV, f"resolves outside the tree to {real}"), rel)
        return real[len(self.real_root.rstrip("/")) + 1:]

    def host_path(self, rel: str | os.PathLike[str] = "") -> Path:
        """The host path of ``rel`` resolved inside the tree: every component a real directory of the tree.

        For bulk work (walking /var) while no package code runs in the tree; use the methods otherwise."""
        resolved = self.resolve(rel)
        return Path(self.real_root) / resolved if resolved else Path(self.real_root)

    # ---- queries ----
    def lstat(self, rel: str | os.PathLike[str]) -> os.stat_result | None:
        """The entry itself (a link is not followed); None when it does not exist."""
        if not _parts(rel):
            return os.fstat(self.fd)
        try:
            with self._parent(rel) as (fd, name):
                return os.stat(name, dir_fd=fd, follow_symlinks=False)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                return None
            raise

    def stat(self, rel: str | os.PathLike[str]) -> os.stat_result | None:
        """What ``rel`` names after links are resolved inside the tree; None when missing, dangling or looping."""
        try:
            fd = self._open(rel, os.O_PATH)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                return None
            raise
        try:
            return os.fstat(fd)
        finally:
            os.close(fd)

    def exists(self, rel: str | os.PathLike[str]) -> bool:
        return self.stat(rel) is not None

    def lexists(self, rel: str | os.PathLike[str]) -> bool:
        return self.lstat(rel) is not None

    def is_file(self, rel: str | os.PathLike[str]) -> bool:
        st = self.stat(rel)
        return st is not None and stat.S_ISREG(st.st_mode)

    def is_dir(self, rel: str | os.PathLike[str]) -> bool:
        st = self.stat(rel)
        return st is not None and stat.S_ISDIR(st.st_mode)

    def is_symlink(self, rel: str | os.PathLike[str]) -> bool:
        st = self.lstat(rel)
        return st is not None and stat.S_ISLNK(st.st_mode)

    def is_real_dir(self, rel: str | os.PathLike[str]) -> bool:
        """A directory that is not a link to one."""
        st = self.lstat(rel)
        return st is not None and stat.S_ISDIR(st.st_mode)

    def readlink(self, rel: str | os.PathLike[str]) -> str:
        with self._errors(rel), self._parent(rel) as (fd, name):
            return os.readlink(name, dir_fd=fd)

    def listdir(self, rel: str | os.PathLike[str] = "") -> list[str]:
        """Names in a directory (resolved inside the tree), sorted."""
        fd = self._open(rel, os.O_RDONLY | os.O_DIRECTORY)
        try:
            return sorted(os.listdir(fd))
        finally:
            os.close(fd)

    # ---- reading ----
    def _open_regular(self, rel: str | os.PathLike[str]) -> int:
        fd = self._open(rel, os.O_RDONLY | os.O_NONBLOCK)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise self._err(OSError(errno.EINVAL, "not a regular file (a FIFO, device or directory where a file "
                                                  "belongs)"), rel)
        return fd

    def read_bytes(self, rel: str | os.PathLike[str], limit: int = DEFAULT_READ_LIMIT) -> bytes:
        fd = self._open_regular(rel)
        with os.fdopen(fd, "rb") as fh:
            data = fh.read(limit + 1)
        if len(data) > limit:
            raise self._err(OSError(errno.EFBIG, f"larger than {limit} bytes"), rel)
        return data

    def read_text(self, rel: str | os.PathLike[str], errors: str = "strict", limit: int = DEFAULT_READ_LIMIT) -> str:
        return self.read_bytes(rel, limit).decode("utf-8", errors)

    # ---- writing ----
    def _own(self, name: str, dir_fd: int) -> None:
        if self.new_owner is not None:
            os.chown(name, *self.new_owner, dir_fd=dir_fd, follow_symlinks=False)

    def write_bytes(self, rel: str | os.PathLike[str], data: bytes, mode: int | None = None) -> None:
        """Make ``rel`` a regular file holding ``data``, replacing whatever entry has that name (a link is
        replaced, never written through). Without ``mode`` a replaced regular file keeps its mode and owner;
        a new file gets 0644."""
        with self._errors(rel), self._parent(rel) as (dfd, name):
            try:
                old: os.stat_result | None = os.stat(name, dir_fd=dfd, follow_symlinks=False)
            except FileNotFoundError:
                old = None
            if old is not None and stat.S_ISDIR(old.st_mode):
                raise OSError(errno.EISDIR, os.strerror(errno.EISDIR))
            kept = old if old is not None and stat.S_ISREG(old.st_mode) else None
            tmp = f".{name[:200]}.intree-{secrets.token_hex(6)}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dfd)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    if kept is not None:
                        os.fchown(fh.fileno(), kept.st_uid, kept.st_gid)
                    elif self.new_owner is not None:
                        os.fchown(fh.fileno(), *self.new_owner)
                    os.fchmod(fh.fileno(), mode if mode is not None else
                              (stat.S_IMODE(kept.st_mode) if kept is not None else 0o644))
                os.rename(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp, dir_fd=dfd)
                raise

    def write_text(self, rel: str | os.PathLike[str], text: str, mode: int | None = None) -> None:
        self.write_bytes(rel, text.encode("utf-8"), mode)

    def copy(self, src: str | os.PathLike[str], dest: str | os.PathLike[str], *, preserve: bool = False,
             limit: int = 1 << 34) -> None:
        """Copy the regular file ``src`` of the tree to ``dest`` in the tree (``dest`` replaced, as in
        :meth:`write_bytes`); ``preserve`` keeps mode, owner and times."""
        fd = self._open_regular(src)
        with os.fdopen(fd, "rb") as fh:
            data = fh.read(limit + 1)
            st = os.fstat(fh.fileno())
        if len(data) > limit:
            raise self._err(OSError(errno.EFBIG, f"larger than {limit} bytes"), src)
        self.write_bytes(dest, data, stat.S_IMODE(st.st_mode) if preserve else None)
        if preserve:
            self.chown(dest, st.st_uid, st.st_gid)
            self.utime(dest, st.st_atime_ns, st.st_mtime_ns)

    def mkdir(self, rel: str | os.PathLike[str], mode: int = 0o755, *, parents: bool = False,
              exist_ok: bool = False) -> None:
        """Create the directory ``rel`` (its parents resolved inside the tree; ``parents`` creates them)."""
        try:
            with self._errors(rel), self._parent(rel) as (dfd, name):
                os.mkdir(name, mode, dir_fd=dfd)
                self._own(name, dfd)
        except FileExistsError:
            if not (exist_ok and self.is_dir(rel)):
                raise
        except FileNotFoundError:
            parent = "/".join(_parts(rel)[:-1])
            if not parents or not parent:
                raise
            self.mkdir(parent, mode, parents=True, exist_ok=True)
            self.mkdir(rel, mode, exist_ok=exist_ok)

    def symlink(self, target: str, rel: str | os.PathLike[str]) -> None:
        """Create the link ``rel -> target`` (fails when ``rel`` exists)."""
        with self._errors(rel), self._parent(rel) as (dfd, name):
            os.symlink(target, name, dir_fd=dfd)
            self._own(name, dfd)

    def unlink(self, rel: str | os.PathLike[str], missing_ok: bool = False) -> None:
        """Remove the entry ``rel`` (a link itself, never what it points to)."""
        try:
            with self._errors(rel), self._parent(rel) as (dfd, name):
                os.unlink(name, dir_fd=dfd)
        except (FileNotFoundError, NotADirectoryError):
            if not missing_ok:
                raise

    def rmdir(self, rel: str | os.PathLike[str]) -> None:
        with self._errors(rel), self._parent(rel) as (dfd, name):
            os.rmdir(name, dir_fd=dfd)

    def rmtree(self, rel: str | os.PathLike[str], missing_ok: bool = False) -> None:
        """Remove ``rel`` and, when it is a real directory, everything below it (links are removed, not
        followed)."""
        st = self.lstat(rel)
        if st is None:
            if missing_ok:
                return
            raise self._err(OSError(errno.ENOENT, os.strerror(errno.ENOENT)), rel)
        if not stat.S_ISDIR(st.st_mode):
            self.unlink(rel)
            return
        with self._errors(rel), self._parent(rel) as (dfd, name):
            shutil.rmtree(name, dir_fd=dfd)

    def rename(self, src: str | os.PathLike[str], dest: str | os.PathLike[str]) -> None:
        """Rename the entry ``src`` to ``dest`` (both names' directories resolved inside the tree)."""
        with self._errors(f"{os.fspath(src)} -> {os.fspath(dest)}"), self._parent(src) as (sfd, sname), \
                self._parent(dest) as (dfd, dname):
            os.rename(sname, dname, src_dir_fd=sfd, dst_dir_fd=dfd)

    # ---- metadata (never through a link: a link's own mode cannot change on Linux) ----
    @contextlib.contextmanager
    def _inode(self, rel: str | os.PathLike[str]) -> Iterator[str]:
        fd = self._open(rel, os.O_PATH, follow=False)
        try:
            if stat.S_ISLNK(os.fstat(fd).st_mode):
                raise self._err(OSError(errno.ELOOP, "is a symbolic link"), rel)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)

    def chmod(self, rel: str | os.PathLike[str], mode: int) -> None:
        with self._inode(rel) as p:
            os.chmod(p, mode)

    def chown(self, rel: str | os.PathLike[str], uid: int, gid: int) -> None:
        with self._inode(rel) as p:
            os.chown(p, uid, gid)

    def utime(self, rel: str | os.PathLike[str], atime_ns: int, mtime_ns: int) -> None:
        with self._inode(rel) as p:
            os.utime(p, ns=(atime_ns, mtime_ns))
