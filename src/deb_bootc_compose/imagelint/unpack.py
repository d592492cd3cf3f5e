"""Apply an image's layers, in order, to a *skeleton* tree: every path with its type, size and link target,
but only the bytes of the files the rules read (:func:`wants_content`); every other regular file is a sparse
file of its size, so a 700 MB image costs a few MB of disk.

Layers are hostile input. A member's name must be relative and free of ``..``; every directory is opened with
``O_NOFOLLOW`` relative to its parent's descriptor, so nothing reaches outside the tree through a link an
earlier member or layer planted; a hard link must name a file of the tree. Modes, owners and extended attributes
are not applied (the rules need none; no set-id file or device node is made on this machine): a device node or
FIFO becomes a FIFO, which the tree lint reports as a special file. Whiteouts (OCI image spec): ``.wh.NAME``
deletes NAME of the lower layers, ``.wh..wh..opq`` empties its directory of them, wherever they stand in the
layer. Each blob is checked against its descriptor's size and sha256 while it is read; the bytes decompressed,
the entries and the bytes written are bounded (:class:`~.fetch.Limits`).
"""

from __future__ import annotations

import hashlib
import os
import stat
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from isal import isal_zlib

from deb_bootc_compose.imagelint.fetch import Image, ImageError, Layer, Limits
from debarchive.safeio import UnsafeEntry, opened_dir, remove_entry

GZIP_ERROR: type[Exception] = isal_zlib.error  # type: ignore[assignment]
WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
CONTENT_PREFIXES = ("etc/", "usr/lib/tmpfiles.d/", "usr/lib/ostree/", "usr/lib/bootc/", "usr/lib/os-release")
SMALL = 1 << 20
INITRAMFS_MAX = 1 << 30


def wants_content(rel: str, size: int) -> bool:
    """Whether the rules read this file's bytes (small configuration files, and the initramfs)."""
    if rel.startswith("usr/lib/modules/") and rel.endswith("/initramfs.img") and rel.count("/") == 4:
        return size <= INITRAMFS_MAX
    return size <= SMALL and rel.startswith(CONTENT_PREFIXES)


@dataclass
class Unpacked:
    root: Path
    entries: int = 0
    content_bytes: int = 0
    read_bytes: int = 0
    non_utf8: list[str] = field(default_factory=list)  # names (escaped) ostree cannot commit


class _Verified:
    """A layer blob read in chunks, its size and sha256 checked at the end, decompressed on the way."""

    def __init__(self, layer: Layer, fh: BinaryIO, budget: int) -> None:
        self.layer, self.fh, self.budget = layer, fh, budget
        self.sha = hashlib.sha256()
        self.size = 0
        self.out = 0
        self.buf = b""
        self.pos = 0
        self.eof = False
        self.dec: object | None = None
        if layer.compression == "gzip":
            self.dec = isal_zlib.decompressobj(31)
        elif layer.compression:
            raise ImageError(f"layer {layer.digest}: {layer.compression} layers are not read by lint; copy the "
                             "image with skopeo copy --dest-compress-format=gzip first")

    def _chunk(self) -> bytes:
        raw = self.fh.read(1 << 20)
        if not raw:
            self.eof = True
            if self.size != self.layer.size or f"sha256:{self.sha.hexdigest()}" != self.layer.digest:
                raise ImageError(f"layer {self.layer.digest} ({self.layer.path}) does not match its descriptor "
                                 f"({self.size} bytes read, {self.layer.size} announced): damaged or replaced")
            return b""
        self.size += len(raw)
        self.sha.update(raw)
        if self.dec is None:
            return raw
        out = b""
        dec = self.dec
        while raw:
            out += dec.decompress(raw)  # type: ignore[attr-defined]
            raw = dec.unused_data  # type: ignore[attr-defined]
            if raw and dec.eof:  # type: ignore[attr-defined]
                self.dec = dec = isal_zlib.decompressobj(31)  # the next gzip member
        return out

    def read(self, n: int = -1) -> bytes:
        pieces: list[bytes] = []
        want = n
        while want != 0:
            if self.pos >= len(self.buf):
                if self.eof:
                    break
                self.buf, self.pos = self._chunk(), 0
                continue
            end = len(self.buf) if want < 0 else min(len(self.buf), self.pos + want)
            pieces.append(self.buf[self.pos:end])
            want = -1 if want < 0 else want - (end - self.pos)
            self.pos = end
        data = b"".join(pieces)
        self.out += len(data)
        if self.out > self.budget:
            raise ImageError(f"layer {self.layer.digest} unpacks to more than the {self.budget} bytes lint reads")
        return data

    def drain(self) -> None:
        """Read to the end (tar's end-of-archive blocks leave bytes behind) so the digest is checked."""
        while not self.eof:
            self._chunk()


def member_parts(name: str) -> list[str]:
    if "\0" in name or name.startswith("/"):
        raise ValueError("an absolute name or a NUL in it")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ValueError("'..' in the name")
    return parts


def _prune(dirfd: int, prefix: str, created: set[str]) -> None:
    """An opaque directory: remove what lower layers put below it, keep what this layer made."""
    for child in os.listdir(dirfd):
        path = f"{prefix}/{child}" if prefix else child
        if path not in created:
            remove_entry(dirfd, child)
        elif stat.S_ISDIR(os.stat(child, dir_fd=dirfd, follow_symlinks=False).st_mode):
            fd = os.open(child, DIR_FLAGS, dir_fd=dirfd)
            try:
                _prune(fd, path, created)
            finally:
                os.close(fd)


class _Applier:
    def __init__(self, rootfd: int, out: Unpacked, limits: Limits) -> None:
        self.rootfd, self.out, self.limits = rootfd, out, limits

    def whiteout(self, parts: list[str], created: set[str]) -> None:
        try:
            with opened_dir(self.rootfd, "/".join(parts[:-1]), create=False) as dfd:
                if parts[-1] == OPAQUE:
                    _prune(dfd, "/".join(parts[:-1]), created)
                    return
                target = parts[-1][len(WHITEOUT):]
                if target in ("", ".", ".."):
                    raise ValueError(f"bad whiteout {parts[-1]!r}")
                if "/".join([*parts[:-1], target]) not in created:
                    remove_entry(dfd, target)
        except FileNotFoundError:
            return  # nothing below to hide

    def extract(self, tar: tarfile.TarFile, m: tarfile.TarInfo, parts: list[str]) -> None:
        rel = "/".join(parts)
        with opened_dir(self.rootfd, "/".join(parts[:-1]), create=True) as dfd:
            name = parts[-1]
            try:
                old = os.stat(name, dir_fd=dfd, follow_symlinks=False)
            except FileNotFoundError:
                old = None
            if m.isdir():
                if old is not None and not stat.S_ISDIR(old.st_mode):
                    remove_entry(dfd, name)
                    old = None
                if old is None:
                    os.mkdir(name, 0o755, dir_fd=dfd)
                return
            if old is not None:
                remove_entry(dfd, name)
            if m.isreg():
                self._file(tar, m, dfd, name, rel)
            elif m.issym():
                os.symlink(m.linkname, name, dir_fd=dfd)
            elif m.islnk():
                target = member_parts(m.linkname)
                with opened_dir(self.rootfd, "/".join(target[:-1])) as sfd:
                    st = os.stat(target[-1], dir_fd=sfd, follow_symlinks=False) if target else None
                    if st is None or not stat.S_ISREG(st.st_mode):
                        raise ValueError(f"a hard link to {m.linkname!r}, which is not a file of the tree")
                    os.link(target[-1], name, src_dir_fd=sfd, dst_dir_fd=dfd, follow_symlinks=False)
            elif m.ischr() or m.isblk() or m.isfifo():
                os.mkfifo(name, 0o600, dir_fd=dfd)
            else:
                raise ValueError(f"unsupported member type {m.type!r}")

    def _file(self, tar: tarfile.TarFile, m: tarfile.TarInfo, dfd: int, name: str, rel: str) -> None:
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=dfd)
        try:
            if not wants_content(rel, m.size):
                os.ftruncate(fd, m.size)  # sparse: the size without the bytes
                return
            self.out.content_bytes += m.size
            if self.out.content_bytes > self.limits.content_bytes:
                raise ImageError(f"the files lint reads hold more than {self.limits.content_bytes} bytes")
            src = tar.extractfile(m)
            while src is not None and (chunk := src.read(1 << 20)):
                os.write(fd, chunk)
        finally:
            os.close(fd)


def _name_ok(m: tarfile.TarInfo, out: Unpacked) -> None:
    for text in (m.name, m.linkname):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            out.non_utf8.append(text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace"))


def apply_layer(layer: Layer, applier: _Applier) -> None:
    out, limits = applier.out, applier.limits
    created: set[str] = set()
    with open(layer.path, "rb") as fh:
        stream = _Verified(layer, fh, limits.unpacked_bytes - out.read_bytes)
        try:
            with tarfile.open(fileobj=stream, mode="r|", encoding="utf-8", errors="surrogateescape") as tar:  # type: ignore[call-overload]
                for m in tar:
                    out.entries += 1
                    if out.entries > limits.entries:
                        raise ImageError(f"{out.entries} entries: more than the {limits.entries} lint reads")
                    try:
                        parts = member_parts(m.name)
                        if not parts:
                            continue  # the layer's own top directory
                        _name_ok(m, out)
                        if parts[-1].startswith(WHITEOUT):
                            applier.whiteout(parts, created)
                        else:
                            applier.extract(tar, m, parts)
                            created.add("/".join(parts))
                    except (ValueError, UnsafeEntry) as exc:  # a name or link that leaves the tree
                        raise ImageError(f"layer {layer.digest}: member {m.name!r}: {exc}: refused") from None
            stream.drain()
        except (tarfile.TarError, EOFError, GZIP_ERROR) as exc:
            raise ImageError(f"layer {layer.digest} ({layer.path}) is not a readable tar layer: {exc}") from None
        out.read_bytes += stream.out


def unpack(image: Image, root: Path, limits: Limits = Limits()) -> Unpacked:
    """Apply ``image``'s layers to the empty directory ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    out = Unpacked(root)
    rootfd = os.open(root, DIR_FLAGS)
    try:
        applier = _Applier(rootfd, out, limits)
        for layer in image.layers:
            try:
                apply_layer(layer, applier)
            except OSError as exc:
                raise ImageError(f"layer {layer.digest}: cannot write into {root}: {exc}") from None
    finally:
        os.close(rootfd)
    return out
