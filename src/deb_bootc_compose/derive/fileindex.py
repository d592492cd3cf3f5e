"""The merged file index of an OCI image (its layers applied in order, OCI whiteouts honoured) and the same
record of a tree, normalised the way :mod:`deb_bootc_compose.oci.tarlayer` writes it, so that the two compare:
type, mode, owner, size, link target, device numbers, extended attributes and the SHA-256 of the content.
Modification times are not compared: an OSTree commit keeps none, and the base's differ from the derived
compose's only by the SOURCE_DATE_EPOCH they are clamped to."""

from __future__ import annotations

import hashlib
import os
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from isal import igzip

from deb_bootc_compose.oci.errors import OciError
from deb_bootc_compose.oci.tarlayer import CHUNK, tarinfo_for
from deb_bootc_compose.oci.tree import TreeEntry
from debsandbox.idmap import IdMap

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
MAX_MEMBERS = 2_000_000  # a layer with more entries than any real image is refused


class LayerReadError(OciError):
    """A base image layer cannot be read; the message says which and why."""


@dataclass(frozen=True)
class FileRecord:
    type: bytes  # tarfile's type flag (REGTYPE for both regular-file flags)
    mode: int
    uid: int
    gid: int
    size: int
    linkname: str
    dev: tuple[int, int]
    xattrs: tuple[tuple[str, str], ...]
    sha256: str = ""  # of a regular file's content

    @property
    def is_dir(self) -> bool:
        return self.type == tarfile.DIRTYPE


def _record(info: tarfile.TarInfo, sha256: str = "") -> FileRecord:
    kind = tarfile.REGTYPE if info.type in (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE) else info.type
    xattrs = tuple(sorted((k, v) for k, v in info.pax_headers.items() if k.startswith("SCHILY.xattr.")))
    return FileRecord(kind, info.mode & 0o7777, info.uid, info.gid, info.size if kind == tarfile.REGTYPE else 0,
                      info.linkname if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE) else "",
                      (info.devmajor, info.devminor) if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE) else (0, 0),
                      xattrs, sha256)


def _norm(name: str) -> str:
    name = name.rstrip("/")
    while name.startswith("./"):
        name = name[2:]
    return name.lstrip("/")


def _members(blob: Path) -> Iterator[tuple[tarfile.TarInfo, tarfile.TarFile]]:
    with igzip.open(blob, "rb") as raw, tarfile.open(fileobj=raw, mode="r|", encoding="utf-8",
                                                      errors="surrogateescape") as tar:
        for n, info in enumerate(tar):
            if n >= MAX_MEMBERS:
                raise LayerReadError(f"{blob}: more than {MAX_MEMBERS} entries in one layer")
            yield info, tar


def _content_digest(tar: tarfile.TarFile, info: tarfile.TarInfo) -> str:
    h = hashlib.sha256()
    fh = tar.extractfile(info)
    if fh is not None:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def apply_layer(index: dict[str, FileRecord], blob: Path) -> None:
    """Apply one gzip layer to ``index`` (path → record) as a container engine would."""
    try:
        for info, tar in _members(blob):
            name = _norm(info.name)
            if not name or ".." in name.split("/"):
                raise LayerReadError(f"{blob}: member {info.name!r} leaves the image's root")
            parent, _, leaf = name.rpartition("/")
            if leaf == OPAQUE:
                prefix = f"{parent}/" if parent else ""
                for path in [p for p in index if p.startswith(prefix) and p != parent]:
                    del index[path]
                continue
            if leaf.startswith(WHITEOUT):
                gone = f"{parent}/{leaf[len(WHITEOUT):]}" if parent else leaf[len(WHITEOUT):]
                for path in [p for p in index if p == gone or p.startswith(gone + "/")]:
                    del index[path]
                continue
            old = index.get(name)
            if old is not None and old.is_dir and not info.isdir():
                for path in [p for p in index if p.startswith(name + "/")]:
                    del index[path]
            if info.type == tarfile.LNKTYPE:
                info.linkname = _norm(info.linkname)
            index[name] = _record(info, _content_digest(tar, info) if info.isreg() else "")
    except (OSError, EOFError, tarfile.TarError) as exc:
        raise LayerReadError(f"{blob}: not a readable gzip tar layer ({exc})") from None


def image_index(blobs: list[Path], check: Callable[[], None] | None = None) -> dict[str, FileRecord]:
    """The merged file index of the layers ``blobs`` (bottom first)."""
    index: dict[str, FileRecord] = {}
    for blob in blobs:
        if check is not None:
            check()
        apply_layer(index, blob)
    return index


def file_digest(path: str) -> str:
    h = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb", buffering=0) as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def tree_record(tree: Path, entry: TreeEntry, hardlink_to: str | None, ids: IdMap | None,
                like: FileRecord | None) -> FileRecord | None:
    """``entry`` as the layer writer writes it (None: nothing a tar holds, a socket). The content's digest is read
    only when everything else equals ``like`` (the base's record of the path): otherwise it differs anyway."""
    info = tarinfo_for(tree, entry, 0, hardlink_to, ids)
    if info is None:
        return None
    rec = _record(info)
    if like is not None and info.isreg() and rec == FileRecord(**{**like.__dict__, "sha256": ""}):
        rec = _record(info, file_digest(os.path.join(os.fspath(tree), entry.path)))
    return rec


def read_files(blobs: list[Path], wanted: set[str], limit: int) -> dict[str, bytes]:
    """The contents of the regular files ``wanted`` (paths without a leading slash) in the image of the layers
    ``blobs`` (bottom first): a later layer's file replaces an earlier one's, a whiteout removes it. Each at most
    ``limit`` bytes."""
    found: dict[str, bytes] = {}
    for blob in blobs:
        try:
            for info, tar in _members(blob):
                name = _norm(info.name)
                parent, _, leaf = name.rpartition("/")
                if leaf.startswith(WHITEOUT):
                    gone = f"{parent}/{leaf[len(WHITEOUT):]}" if leaf != OPAQUE else parent
                    for path in [p for p in found if p == gone or p.startswith(gone + "/")]:
                        del found[path]
                elif name in wanted:
                    fh = tar.extractfile(info) if info.isreg() and info.size <= limit else None
                    if fh is None:
                        found.pop(name, None)
                    else:
                        found[name] = fh.read()
        except (OSError, EOFError, tarfile.TarError) as exc:
            raise LayerReadError(f"{blob}: not a readable gzip tar layer ({exc})") from None
    return found
