"""Binary packages of builds: each uploaded .deb is inspected (ar members, control.tar, data.tar, control
fields against the build and the file name) before it is stored; completed builds are scanned once and their
stanzas kept in the DB."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from debian.deb822 import Deb822
from sqlalchemy import select
from sqlalchemy.orm import Session

from deb_orchestrator.hub.errors import HubError
from deb_orchestrator.hub.models import Artifact, BinaryPackage, Build, Task
from deb_orchestrator.hub.store import ChecksumMismatch, Store
from debarchive import aptrepo
from debarchive.pool import hashes_file

AR_MAGIC = b"!<arch>\n"
MAX_CONTROL_TAR = 64 << 20  # control.tar of real packages is a few KiB


@dataclass(frozen=True)
class Expected:
    """What a buildArch task of a build may upload as a .deb."""

    source: str
    version: str  # the source version, epoch included (as in the .deb's Version or Source field)
    binaries: frozenset[str]  # the .dsc's Binary field; empty: not known, not checked
    arches: frozenset[str]  # the task's arch, plus "all" unless it builds arch-specific packages only


def expected_for(session: Session, task: Task, name: str) -> Expected | None:
    """What an upload named ``name`` must be, or None when it is not a binary package."""
    if not name.endswith((".deb", ".udeb")) or task.build_id is None:
        return None
    build = session.get(Build, task.build_id)
    if build is None:
        return None
    binary = Deb822(build.source_stanza).get("Binary", "") if build.source_stanza else ""
    names = frozenset(b.strip() for b in binary.replace("\n", " ").split(",") if b.strip())
    arches = {task.arch} | ({"all"} if task.build_what != "arch" else set())
    return Expected(build.source, build.version, names, frozenset(arches))


def _bad(name: str, why: str) -> HubError:
    return HubError(f"{name}: {why}; the upload was refused", 400)


def _unsafe_path(member: str) -> bool:
    path = PurePosixPath(member)
    return member.startswith("/") or ".." in path.parts


class _Slice(io.RawIOBase):
    """``size`` bytes of an open file from ``offset``: one ar member, read without copying it."""

    def __init__(self, f: BinaryIO, offset: int, size: int) -> None:
        self.f, self.pos, self.end = f, offset, offset + size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        want = min(len(buffer), self.end - self.pos)
        if want <= 0:
            return 0
        self.f.seek(self.pos)
        data = self.f.read(want)
        buffer[: len(data)] = data
        self.pos += len(data)
        return len(data)


def _ar_members(f: BinaryIO, name: str, total: int) -> list[tuple[str, int, int]]:
    """(member name, offset, size) of every member of an ar archive; refuses odd or unsafe names."""
    if f.read(8) != AR_MAGIC:
        raise _bad(name, "not a Debian binary package (no ar archive signature)")
    members = []
    offset = 8
    while offset < total:
        f.seek(offset)
        header = f.read(60)
        if len(header) < 60 or header[58:60] != b"`\n":
            raise _bad(name, f"ar archive header at byte {offset} is damaged")
        raw = header[:16].decode("ascii", "replace").rstrip(" ")
        try:
            size = int(header[48:58].decode("ascii").strip())
        except ValueError:
            raise _bad(name, f"ar member {raw!r} has no valid size") from None
        member = raw[:-1] if raw.endswith("/") and raw not in ("/", "//") else raw
        if not member or "/" in member or member in (".", "..") or member.startswith("#1/"):
            raise _bad(name, f"ar member {raw!r} is not a plain name (path traversal?)")
        if offset + 60 + size > total:
            raise _bad(name, f"ar member {member!r} runs past the end of the file (truncated upload?)")
        members.append((member, offset + 60, size))
        offset += 60 + size + (size & 1)
    return members


def _decompress(data: bytes, member: str, name: str) -> bytes:
    suffix = member.rsplit(".", 1)[-1] if member.count(".") > 1 else ""
    try:
        if suffix == "":
            return data
        if suffix == "gz":
            return gzip.decompress(data)
        if suffix == "xz":
            return lzma.decompress(data)
        if suffix == "bz2":
            return bz2.decompress(data)
        if suffix == "zst":
            return subprocess.run(["zstd", "-dc"], input=data, capture_output=True, check=True, timeout=120).stdout
    except (OSError, EOFError, lzma.LZMAError, subprocess.CalledProcessError) as exc:
        raise _bad(name, f"{member} cannot be decompressed: {exc}") from None
    raise _bad(name, f"{member}: unknown compression {suffix!r}")


def _check_tar_members(tar: tarfile.TarFile, member: str, name: str) -> None:
    for info in tar:
        if _unsafe_path(info.name):
            raise _bad(name, f"{member} holds {info.name!r}, a path outside the package (path traversal)")
        if info.islnk() and _unsafe_path(info.linkname):
            raise _bad(name, f"{member} holds a hard link {info.name!r} to {info.linkname!r} outside the package")


def _check_data_tar(path: Path, member: str, name: str) -> None:
    """Every path in data.tar (any compression dpkg knows; dpkg-deb decompresses it as a stream)."""
    with subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(path)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        try:
            with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
                _check_tar_members(tar, member, name)
        except tarfile.TarError as exc:
            proc.kill()
            raise _bad(name, f"{member} is not a readable tar archive: {exc}") from None
        except HubError:
            proc.kill()
            raise
        finally:
            proc.stdout.close()
            err = proc.stderr.read().decode(errors="replace").strip() if proc.stderr else ""
        if proc.wait() != 0 and err:
            raise _bad(name, f"dpkg-deb cannot read {member}: {err.splitlines()[-1]}")


def inspect_deb(path: Path, name: str, expected: Expected, sha256: str | None = None) -> dict[str, str]:
    """Open an uploaded .deb and check it before it is stored: plain ar member names, debian-binary 2.x,
    control.tar and data.tar without absolute or ``..`` paths, and a control file whose Package, Version,
    Architecture and Source belong to this build and match the declared file name. Raises HubError (400)
    naming the file and the member (ChecksumMismatch first when ``sha256`` is given and differs); returns
    the control fields checked."""
    if sha256 is not None:
        size, _, digest = hashes_file(path)
        if digest != sha256:
            raise ChecksumMismatch(f"upload corrupted: declared sha256 {sha256}, received {digest} ({size} bytes)")
    total = path.stat().st_size
    with path.open("rb") as f:
        members = _ar_members(f, name, total)
        names = [m for m, _, _ in members]
        if not names or names[0] != "debian-binary":
            raise _bad(name, f"the first ar member must be debian-binary, found {names[:1] or 'none'}")
        control_m = next(((m, o, s) for m, o, s in members if m.startswith("control.tar")), None)
        data_m = next((m for m in names if m.startswith("data.tar")), None)
        if control_m is None or data_m is None:
            raise _bad(name, f"ar members {', '.join(names)}: a .deb needs control.tar and data.tar")
        f.seek(members[0][1])
        if not f.read(members[0][2]).startswith(b"2."):
            raise _bad(name, "debian-binary is not format 2.x")
        member, offset, size = control_m
        if size > MAX_CONTROL_TAR:
            raise _bad(name, f"{member} is {size} bytes; a control archive is a few KiB")
        f.seek(offset)
        data = _decompress(f.read(size), member, name)
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            _check_tar_members(tar, member, name)
            info = next((i for i in tar.getmembers() if i.name.lstrip("./") == "control" and i.isfile()), None)
            extracted = tar.extractfile(info) if info is not None else None
            control_text = extracted.read().decode("utf-8", "replace") if extracted is not None else None
    except tarfile.TarError as exc:
        raise _bad(name, f"{member} is not a readable tar archive: {exc}") from None
    if control_text is None:
        raise _bad(name, f"{member} holds no control file")
    _check_data_tar(path, data_m, name)
    return check_control(Deb822(control_text), name, expected)


def check_control(control: Deb822, name: str, expected: Expected) -> dict[str, str]:
    """The control fields of a .deb against the build it is uploaded for and its file name."""
    missing = [k for k in ("Package", "Version", "Architecture") if not control.get(k)]
    if missing:
        raise _bad(name, f"the control file has no {', '.join(missing)} field")
    package, version, arch = control["Package"], control["Version"], control["Architecture"]
    source_field = control.get("Source", package).strip()
    source, _, rest = source_field.partition(" ")
    source_version = rest.strip().strip("()").strip() or version
    if source != expected.source:
        raise _bad(name, f"the control file says Source {source}, but this build is of {expected.source}")
    if source_version != expected.version:
        raise _bad(name, f"the control file says source version {source_version}, but this build is "
                         f"{expected.source} {expected.version}")
    allowed = expected.binaries | {f"{b}-dbgsym" for b in expected.binaries}
    if expected.binaries and package not in allowed:
        raise _bad(name, f"package {package} is not one the source builds ({', '.join(sorted(expected.binaries))})")
    if arch not in expected.arches:
        raise _bad(name, f"Architecture {arch}, but this task builds {' and '.join(sorted(expected.arches))}")
    suffix = ".udeb" if name.endswith(".udeb") else ".deb"
    wanted = f"{package}_{version.split(':', 1)[-1]}_{arch}{suffix}"
    if name != wanted:
        raise _bad(name, f"the control file (Package {package}, Version {version}, Architecture {arch}) "
                         f"names this file {wanted}")
    return {"Package": package, "Version": version, "Architecture": arch, "Source": source}


def current_debs(session: Session, build: Build) -> list[Artifact]:
    """The .deb artifacts uploaded by the closed buildArch tasks of the build's current task tree."""
    task_ids = [
        t
        for t in session.scalars(
            select(Task.id).where(Task.parent_id == build.task_id, Task.method == "buildArch", Task.state == "closed")
        )
    ]
    if not task_ids:
        return []
    return list(
        session.scalars(
            select(Artifact).where(
                Artifact.build_id == build.id, Artifact.task_id.in_(task_ids), Artifact.kind == "deb"
            )
        )
    )


def register_binaries(session: Session, store: Store, build: Build) -> list[BinaryPackage]:
    """Scan the build's .debs and store their Packages stanzas (Filename = pool path)."""
    rows: list[BinaryPackage] = []
    seen: set[str] = set()
    for art in current_debs(session, build):
        if art.name in seen:  # arch:all built once, but be safe if two tasks uploaded the same file
            continue
        seen.add(art.name)
        try:
            entry = aptrepo.scan_deb(store.path(art.sha256), aptrepo.pool_path(build.source, art.name))
        except aptrepo.RepoError as exc:
            raise HubError(f"build {build.ident}: uploaded {art.name} is not a usable .deb: {exc}") from exc
        if entry.source != build.source:
            raise HubError(f"build {build.ident}: {art.name} belongs to source {entry.source}, not {build.source}")
        row = BinaryPackage(build_id=build.id, name=entry.name, version=entry.version, arch=entry.arch,
                            filename=entry.filename, sha256=entry.sha256, size=entry.size, stanza=entry.stanza)
        session.add(row)
        rows.append(row)
    return rows
