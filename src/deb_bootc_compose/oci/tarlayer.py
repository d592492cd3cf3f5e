"""Deterministic tar layers, gzip-compressed, with their digests computed while they are written.

Same tree in, same bytes out: members in tree order (parents first, byte-sorted siblings), mtimes clamped
to SOURCE_DATE_EPOCH, numeric uid/gid with empty user and group names, PAX format with extended attributes
as ``SCHILY.xattr.*`` records, hardlinks as hardlinks (the first path of a group in tree order carries the
data), symlinks as symlinks whatever they point to, gzip with mtime 0 and no file name.
"""

from __future__ import annotations

import hashlib
import os
import stat
import struct
import tarfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from isal import isal_zlib

from deb_bootc_compose.oci.errors import OciCancelled
from deb_bootc_compose.oci.tree import TreeEntry, TreeError
from debsandbox.idmap import IdMap, IdMapError, IdRange

CHUNK = 1 << 20
# ISA-L's deflate (a gzip stream any gunzip reads) at level 2 compresses a Debian tree about six times
# faster than zlib at level 1, to a slightly smaller result (measured on a trixie minbase tree: 0.5 s vs
# 2.9 s of CPU for 124 MB). Compressed bytes are part of the digest: change the level, change the digests.
DEFAULT_LEVEL = 2


@dataclass(frozen=True)
class LayerBlob:
    digest: str  # "sha256:…" of the compressed blob
    diff_id: str  # "sha256:…" of the uncompressed tar
    size: int  # compressed bytes
    tar_size: int  # uncompressed bytes


class _DigestingGzipSink:
    """Tar bytes in, gzip out to ``fh``; the sha256 of both kept. Small writes are gathered into chunks."""

    def __init__(self, fh: BinaryIO, level: int) -> None:
        self.fh = fh
        self.diff = hashlib.sha256()
        self.digest = hashlib.sha256()
        # wbits 31: gzip wrapper written by the compressor itself: mtime 0, no name, OS byte fixed.
        self.comp = isal_zlib.compressobj(level, isal_zlib.DEFLATED, 31)
        self.buf = bytearray()
        self.tar_size = 0
        self.size = 0

    def tell(self) -> int:
        return self.tar_size + len(self.buf)

    def write(self, data: bytes | memoryview) -> None:
        if len(data) >= CHUNK and not self.buf:
            self._consume(data)
            return
        self.buf += data
        if len(self.buf) >= CHUNK:
            self._consume(self.buf)
            self.buf = bytearray()

    def _consume(self, data: bytes | bytearray | memoryview) -> None:
        self.diff.update(data)
        self.tar_size += len(data)
        out = self.comp.compress(data)
        if out:
            self.fh.write(out)
            self.digest.update(out)
            self.size += len(out)

    def finish(self) -> None:
        if self.buf:
            self._consume(self.buf)
            self.buf = bytearray()
        out = self.comp.flush()
        self.fh.write(out)
        self.digest.update(out)
        self.size += len(out)


VFS_CAP_REVISION_MASK = 0xFF000000
VFS_CAP_REVISION_2 = 0x02000000
VFS_CAP_REVISION_3 = 0x03000000
ACL_USER, ACL_GROUP = 0x02, 0x08


def inner_xattr(name: str, value: bytes, ids: IdMap, path: str) -> bytes:
    """An xattr as the tree's user namespace reads it, from the host's view of it.

    ``security.capability`` set by ns-root is stored as revision 3 with the namespace's root as ``rootid``;
    inside the namespace (and in the image) it is the plain revision 2 form a root-owned file carries. POSIX
    ACLs name host ids; the image names the namespace's.
    """
    if name == "security.capability" and len(value) == 24:
        magic, rootid = struct.unpack_from("<I", value)[0], struct.unpack_from("<I", value, 20)[0]
        if magic & VFS_CAP_REVISION_MASK == VFS_CAP_REVISION_3:
            if rootid != ids.root_uid:
                raise TreeError(f"{path}: file capability for root id {rootid}, not the tree's namespace root "
                                f"{ids.root_uid}")
            return struct.pack("<I", (magic & ~VFS_CAP_REVISION_MASK) | VFS_CAP_REVISION_2) + value[4:20]
    if name in ("system.posix_acl_access", "system.posix_acl_default") and len(value) >= 4:
        out = bytearray(value)
        for off in range(4, len(value) - 7, 8):
            tag, _perm, ident = struct.unpack_from("<HHI", value, off)
            try:
                if tag == ACL_USER:
                    struct.pack_into("<I", out, off + 4, _inner_id(ident, ids.uids))
                elif tag == ACL_GROUP:
                    struct.pack_into("<I", out, off + 4, _inner_id(ident, ids.gids))
            except IdMapError as exc:
                raise TreeError(f"{path}: {name} names an id outside the tree's namespace: {exc}") from exc
        return bytes(out)
    return value


def _inner_id(value: int, ranges: tuple[IdRange, ...]) -> int:
    for r in ranges:
        if r.outer <= value < r.outer + r.count:
            return int(r.inner + value - r.outer)
    raise IdMapError(f"host id {value} is not mapped")


def read_xattrs(path: str, ids: IdMap | None = None) -> dict[str, str]:
    """Extended attributes as PAX records; binary values survive through surrogate escapes."""
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    records: dict[str, str] = {}
    for name in sorted(names):
        try:
            value = os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            continue
        if ids is not None:
            value = inner_xattr(name, value, ids, path)
        records[f"SCHILY.xattr.{name}"] = value.decode("utf-8", "surrogateescape")
    return records


def tarinfo_for(
    tree: Path, entry: TreeEntry, source_date_epoch: int, hardlink_to: str | None, ids: IdMap | None = None
) -> tarfile.TarInfo | None:
    st = entry.st
    info = tarfile.TarInfo(entry.path)
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid = st.st_uid
    info.gid = st.st_gid
    info.uname = ""
    info.gname = ""
    info.mtime = min(int(st.st_mtime), source_date_epoch)
    abs_path = os.path.join(os.fspath(tree), entry.path)
    mode = st.st_mode
    if stat.S_ISREG(mode):
        if hardlink_to is not None:
            info.type = tarfile.LNKTYPE
            info.linkname = hardlink_to
        else:
            info.type = tarfile.REGTYPE
            info.size = st.st_size
    elif stat.S_ISDIR(mode):
        info.type = tarfile.DIRTYPE
    elif stat.S_ISLNK(mode):
        info.type = tarfile.SYMTYPE
        info.linkname = os.readlink(abs_path)
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        info.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
        info.devmajor = os.major(st.st_rdev)
        info.devminor = os.minor(st.st_rdev)
    elif stat.S_ISFIFO(mode):
        info.type = tarfile.FIFOTYPE
    else:
        return None  # sockets cannot be archived; they are runtime objects anyway
    xattrs = read_xattrs(abs_path, ids)
    if xattrs:
        info.pax_headers = xattrs
    return info


_TYPEFLAGS = {
    stat.S_IFREG: tarfile.REGTYPE,
    stat.S_IFDIR: tarfile.DIRTYPE,
    stat.S_IFLNK: tarfile.SYMTYPE,
    stat.S_IFCHR: tarfile.CHRTYPE,
    stat.S_IFBLK: tarfile.BLKTYPE,
    stat.S_IFIFO: tarfile.FIFOTYPE,
}
_MAGIC = tarfile.POSIX_MAGIC  # b"ustar\x0000"


def _octal(value: int, digits: int) -> bytes:
    return b"%0*o\0" % (digits - 1, value)


def ustar_header(
    name: str, mode: int, uid: int, gid: int, size: int, mtime: int, typeflag: bytes, linkname: str, dev: int | None
) -> bytes | None:
    """The header ``TarInfo.tobuf(PAX_FORMAT)`` writes when no PAX record is needed, built directly (the
    per-entry Python work is what bounds the writer); None when a PAX record is needed (long or non-ASCII
    names, large numbers): the caller then goes through tarfile."""
    try:
        bname = name.encode("ascii")
        blink = linkname.encode("ascii")
    except UnicodeEncodeError:
        return None
    if len(bname) > 100 or len(blink) > 100:
        return None
    if not (0 <= uid < 8**7 and 0 <= gid < 8**7 and 0 <= size < 8**11 and 0 <= mtime < 8**11):
        return None
    if dev is None:
        devfields = bytes(16)
    else:
        major, minor = os.major(dev), os.minor(dev)
        if not (0 <= major < 8**7 and 0 <= minor < 8**7):
            return None
        devfields = _octal(major, 8) + _octal(minor, 8)
    block = b"".join(
        (
            bname.ljust(100, b"\0"),
            _octal(mode & 0o7777, 8),
            _octal(uid, 8),
            _octal(gid, 8),
            _octal(size, 12),
            _octal(mtime, 12),
            b"        ",
            typeflag,
            blink.ljust(100, b"\0"),
            _MAGIC,
            bytes(64),  # empty user and group names
            devfields,
            bytes(167),  # prefix (unused in PAX format) and padding to 512
        )
    )
    checksum = 256 + sum(block[:148]) + sum(block[156:])
    return block[:148] + b"%06o\0" % checksum + block[155:]


def header_for(
    tree: Path, entry: TreeEntry, source_date_epoch: int, hardlink_to: str | None, ids: IdMap | None = None
) -> tuple[bytes, int] | None:
    """(header blocks, bytes of file data that follow) for one entry; None for what tar cannot hold."""
    st = entry.st
    fmt = stat.S_IFMT(st.st_mode)
    typeflag = _TYPEFLAGS.get(fmt)
    if typeflag is None:
        return None  # sockets
    abs_path = os.path.join(os.fspath(tree), entry.path)
    try:
        has_xattrs = bool(os.listxattr(abs_path, follow_symlinks=False))
    except OSError:
        has_xattrs = False
    if not has_xattrs:
        name, size, linkname = entry.path, 0, ""
        if typeflag == tarfile.REGTYPE:
            if hardlink_to is not None:
                typeflag, linkname = tarfile.LNKTYPE, hardlink_to
            else:
                size = st.st_size
        elif typeflag == tarfile.DIRTYPE:
            name += "/"
        elif typeflag == tarfile.SYMTYPE:
            linkname = os.readlink(abs_path)
        dev = st.st_rdev if typeflag in (tarfile.CHRTYPE, tarfile.BLKTYPE) else None
        mtime = min(int(st.st_mtime), source_date_epoch)
        header = ustar_header(name, st.st_mode, st.st_uid, st.st_gid, size, mtime, typeflag, linkname, dev)
        if header is not None:
            return header, size
    info = tarinfo_for(tree, entry, source_date_epoch, hardlink_to, ids)
    if info is None:
        return None
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"), info.size if info.isreg() else 0


def empty_file_header(name: str, source_date_epoch: int) -> bytes:
    """The header of an empty regular file owned by root, mode 0644 (an OCI whiteout)."""
    header = ustar_header(name, 0o644, 0, 0, 0, source_date_epoch, tarfile.REGTYPE, "", None)
    if header is not None:
        return header
    info = tarfile.TarInfo(name)
    info.mode, info.mtime, info.uname, info.gname = 0o644, source_date_epoch, "", ""
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def _copy_file(abs_path: str, size: int, sink: _DigestingGzipSink) -> None:
    try:
        fd = os.open(abs_path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise TreeError(f"cannot read {abs_path}: {exc.strerror}") from exc
    with os.fdopen(fd, "rb", buffering=0) as src:
        left = size
        while left:
            chunk = src.read(min(CHUNK, left))
            if not chunk:
                raise TreeError(f"{abs_path} shrank while the image was written")
            sink.write(chunk)
            left -= len(chunk)
        if src.read(1):
            raise TreeError(f"{abs_path} grew while the image was written")
    pad = -size % tarfile.BLOCKSIZE
    if pad:
        sink.write(bytes(pad))


def write_layer(
    tree: Path,
    members: list[TreeEntry],
    hardlinks: dict[str, str],
    source_date_epoch: int,
    dest_dir: Path,
    *,
    level: int = DEFAULT_LEVEL,
    should_stop: Callable[[], bool] | None = None,
    ids: IdMap | None = None,
    sources: Mapping[str, tuple[Path, TreeEntry]] | None = None,
    whiteouts: frozenset[str] = frozenset(),
) -> LayerBlob:
    """Write ``members`` (already in order) as one gzip layer into ``dest_dir/<hex digest>``.

    ``hardlinks`` maps a path to the earlier path of the same inode that carries its data. ``ids``: the tree
    was made in a user namespace with that map (the members' owners are already inner ids, see
    :func:`~deb_bootc_compose.oci.tree.scan_tree`); xattrs are written as the namespace reads them.
    ``sources``: directories written as another tree has them (path → that tree and its entry; no data).
    ``whiteouts``: member paths (``DIR/.wh.NAME``, not in the tree) written as empty files (OCI whiteouts).
    """
    dest_dir.mkdir(parents=True, exist_ok=True)
    tmp = dest_dir / f".layer-{os.getpid()}-{id(members):x}.tmp"
    tree_str = os.fspath(tree)
    try:
        with open(tmp, "wb") as fh:
            sink = _DigestingGzipSink(fh, level)
            for entry in members:
                if should_stop is not None and should_stop():
                    raise OciCancelled("the OCI image write was cancelled")
                if entry.path in whiteouts:
                    sink.write(empty_file_header(entry.path, source_date_epoch))
                    continue
                root, entry = sources[entry.path] if sources and entry.path in sources else (tree, entry)
                made = header_for(root, entry, source_date_epoch, hardlinks.get(entry.path), ids)
                if made is None:
                    continue
                header, size = made
                sink.write(header)
                if size:
                    _copy_file(os.path.join(tree_str, entry.path), size, sink)
            # end of archive: two zero blocks, then zeros up to a whole record (as tarfile writes it)
            sink.write(bytes(2 * tarfile.BLOCKSIZE))
            sink.write(bytes(-sink.tell() % tarfile.RECORDSIZE))
            sink.finish()
        hex_digest = sink.digest.hexdigest()
        final = dest_dir / hex_digest
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()
    return LayerBlob(
        digest=f"sha256:{hex_digest}",
        diff_id=f"sha256:{sink.diff.hexdigest()}",
        size=sink.size,
        tar_size=sink.tar_size,
    )
