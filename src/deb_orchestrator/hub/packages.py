"""Binary packages of builds: each uploaded .deb is inspected (ar members, control.tar, data.tar, control
fields against the build and the file name) before it is stored; completed builds are scanned once and their
stanzas kept in the DB.

Uploads come from builders, which run other people's code: the inspection assumes a hostile file. Members
are decompressed by ``dpkg-deb`` as streams and counted while they are read, so a small archive that unpacks
to gigabytes (a "zip bomb") is refused after reading at most the limit and never held in memory. The control
file is parsed the way dpkg parses it (lines end at ``\\n`` only; a field given twice is an error), and a file
holding characters that Python's ``str.splitlines`` (and so python-debian) treats as line breaks is refused:
otherwise a field could hide a second ``Package``/``Version`` that the hub would believe and dpkg would not."""

from __future__ import annotations

import io
import re
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, BinaryIO

from debian.deb822 import Deb822
from sqlalchemy import select
from sqlalchemy.orm import Session

from deb_orchestrator.hub.errors import HubError
from deb_orchestrator.hub.models import Artifact, BinaryPackage, Build, Task
from deb_orchestrator.hub.store import ChecksumMismatch, Store
from deb_orchestrator.states import TaskMethod, TaskState
from debarchive import aptrepo
from debarchive.digest import hashes_file
from debarchive.pool import ARCH_RE, PKG_RE, VERSION_RE

AR_MAGIC = b"!<arch>\n"
MAX_CONTROL_TAR = 64 << 20  # compressed control.tar; real packages have a few KiB
MAX_CONTROL_FILE = 1 << 20  # the control file itself
# characters str.splitlines() breaks lines at besides \n; dpkg does not
LINE_BREAKS = "\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
_BREAKS_RE = re.compile(f"[{LINE_BREAKS}]")
_FIELD_RE = re.compile(r"^([!-9;-~][!-9;-~]*):(.*)$")  # dpkg: a field name is printable ASCII without ':'
_BINNMU_RE = re.compile(r"\+b[0-9]+$")


def mib(n: int) -> str:
    return f"{n / (1 << 20):g} MiB" if n < 1 << 30 else f"{n / (1 << 30):g} GiB"


@dataclass(frozen=True)
class Limits:
    """How far the hub unpacks an uploaded .deb before refusing it."""

    control_bytes: int = 64 << 20  # the uncompressed control.tar
    data_bytes: int = 8 << 30  # the uncompressed data.tar (the installed size, plus tar headers)


@dataclass(frozen=True)
class Expected:
    """What a buildArch task of a build may upload as a .deb."""

    source: str
    version: str  # the source version, epoch included (as in the .deb's Version or Source field)
    binaries: frozenset[str]  # the .dsc's Package-List (or Binary) names; their -dbgsym packages are allowed too
    arches: frozenset[str]  # the task's arch, plus "all" unless it builds arch-specific packages only


def source_binaries(stanza: str) -> frozenset[str]:
    """The binary package names a source says it builds: its Package-List, else its Binary field."""
    para = Deb822(stanza) if stanza else Deb822()
    listed = para.get("Package-List", "")
    names = {line.split()[0] for line in listed.split("\n") if line.strip()}
    if not names:
        names = {b.strip() for b in para.get("Binary", "").replace("\n", " ").split(",") if b.strip()}
    return frozenset(names)


def expected_for(session: Session, task: Task, name: str) -> Expected | None:
    """What an upload named ``name`` must be, or None when it is not a binary package."""
    if not name.endswith((".deb", ".udeb")) or task.build_id is None:
        return None
    build = session.get(Build, task.build_id)
    if build is None:
        return None
    arches = {task.arch} | ({"all"} if task.build_what != "arch" else set())
    return Expected(build.source, build.version, source_binaries(build.source_stanza or ""), frozenset(arches))


def _bad(name: str, why: str) -> HubError:
    return HubError(f"{name}: {why}; the upload was refused", 400)


def _unsafe_path(member: str) -> bool:
    path = PurePosixPath(member)
    return member.startswith("/") or ".." in path.parts


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


class _TooBig(Exception):
    pass


class _Capped(io.RawIOBase):
    """A pipe read through a counter: more than ``cap`` bytes raises _TooBig (nothing is buffered)."""

    def __init__(self, f: IO[bytes], cap: int) -> None:
        self.f, self.cap, self.count = f, cap, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.f.read(min(len(buffer), 1 << 16))
        self.count += len(data)
        if self.count > self.cap:
            raise _TooBig
        buffer[: len(data)] = data
        return len(data)

    def drain(self) -> None:
        while self.readinto(bytearray(1 << 16)):
            pass


def _check_tar_members(tar: tarfile.TarFile, member: str, name: str,
                       want: str | None = None) -> bytes | None:
    """Check every path of a streamed tar; returns the content of the regular file ``want`` (if found)."""
    found = None
    for info in tar:
        if _unsafe_path(info.name):
            raise _bad(name, f"{member} holds {info.name!r}, a path outside the package (path traversal)")
        if info.islnk() and _unsafe_path(info.linkname):
            raise _bad(name, f"{member} holds a hard link {info.name!r} to {info.linkname!r} outside the package")
        if want is not None and info.isfile() and info.name.removeprefix("./") == want and found is None:
            if info.size > MAX_CONTROL_FILE:
                raise _bad(name, f"{member}: its {want} file is {info.size} bytes (at most {mib(MAX_CONTROL_FILE)})")
            extracted = tar.extractfile(info)
            found = extracted.read() if extracted is not None else b""
    return found


def _stream_member(path: Path, option: str, member: str, name: str, cap: int, want: str | None) -> bytes | None:
    """Stream one tar member of the .deb out of ``dpkg-deb OPTION`` (it decompresses every format dpkg knows),
    checking its paths and counting its bytes; more than ``cap`` is refused without reading further."""
    with subprocess.Popen(["dpkg-deb", option, str(path)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        capped = _Capped(proc.stdout, cap)
        try:
            with tarfile.open(fileobj=io.BufferedReader(capped, 1 << 16), mode="r|") as tar:
                found = _check_tar_members(tar, member, name, want)
            capped.drain()  # what follows the end-of-archive blocks counts too (dpkg reads it all)
        except _TooBig:
            proc.kill()
            raise _bad(name, f"{member} unpacks to more than {mib(cap)} (the hub's limit)") from None
        except tarfile.TarError as exc:
            proc.kill()
            raise _bad(name, f"{member} is not a readable tar archive: {exc}") from None
        except HubError:
            proc.kill()
            raise
        finally:
            proc.stdout.close()
            err = proc.stderr.read(1 << 16).decode(errors="replace").strip() if proc.stderr else ""
        if proc.wait() != 0 and err:
            raise _bad(name, f"dpkg-deb cannot read {member}: {err.splitlines()[-1]}")
    return found


def parse_control(raw: bytes, name: str) -> dict[str, str]:
    """A binary package's control file, parsed as dpkg parses it: one paragraph, lines end at \\n only,
    continuation lines start with a space or tab, a field may appear once. Characters that other parsers
    take for line breaks are refused, so every tool reading this file sees the same fields."""
    text = raw.decode("utf-8", "replace")
    if bad := _BREAKS_RE.search(text):
        raise _bad(name, f"the control file holds the character U+{ord(bad.group()):04X}, which python-debian "
                         "and other tools read as a line break and dpkg does not (it could hide a second "
                         "Package or Version field)")
    fields: dict[str, str] = {}
    keys: dict[str, str] = {}
    last: str | None = None
    lines = text.split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            if any(rest.strip() for rest in lines[lineno:]):
                raise _bad(name, "the control file has more than one paragraph")
            break
        if line[0] in " \t":
            if last is None:
                raise _bad(name, f"control file line {lineno} continues no field")
            fields[last] += "\n" + line
            continue
        m = _FIELD_RE.match(line)
        if m is None:
            raise _bad(name, f"control file line {lineno} is not 'Field: value': {line[:60]!r}")
        key = m.group(1)
        if key.lower() in keys:
            raise _bad(name, f"the control file gives the field {keys[key.lower()]} twice (dpkg refuses that)")
        keys[key.lower()] = key
        fields[key] = m.group(2).strip()
        last = key
    return {k: v.strip() for k, v in fields.items()}


def inspect_deb(path: Path, name: str, expected: Expected, sha256: str | None = None,
                limits: Limits = Limits()) -> dict[str, str]:
    """Open an uploaded .deb and check it before it is stored: plain ar member names, debian-binary 2.x,
    control.tar and data.tar without absolute or ``..`` paths and within ``limits`` when unpacked, and a
    control file (parsed as dpkg parses it) whose Package, Version, Architecture and Source are ones this
    task may produce and match the declared file name. Raises HubError (400) naming the file and the member
    (ChecksumMismatch first when ``sha256`` is given and differs); returns the control fields checked."""
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
        if not f.read(min(members[0][2], 64)).startswith(b"2."):
            raise _bad(name, "debian-binary is not format 2.x")
        member, _, size = control_m
        if size > MAX_CONTROL_TAR:
            raise _bad(name, f"{member} is {size} bytes; a control archive is a few KiB")
    control = _stream_member(path, "--ctrl-tarfile", member, name, limits.control_bytes, "control")
    if control is None:
        raise _bad(name, f"{member} holds no control file")
    fields = parse_control(control, name)
    checked = check_control(fields, name, expected)
    _stream_member(path, "--fsys-tarfile", data_m, name, limits.data_bytes, None)
    return checked


def check_control(control: dict[str, str], name: str, expected: Expected) -> dict[str, str]:
    """The control fields of a .deb against what its task may produce and its file name."""
    missing = [k for k in ("Package", "Version", "Architecture") if not control.get(k)]
    if missing:
        raise _bad(name, f"the control file has no {', '.join(missing)} field")
    package, version, arch = control["Package"], control["Version"], control["Architecture"]
    for value, pattern, what in ((package, PKG_RE, "Package"), (version, VERSION_RE, "Version"),
                                 (arch, ARCH_RE, "Architecture")):
        if not pattern.match(value):
            raise _bad(name, f"the control file's {what} {value!r} is not a valid Debian {what.lower()}")
    source_field = control.get("Source", package).strip()
    source, _, rest = source_field.partition(" ")
    source_version = rest.strip().strip("()").strip() or version
    if source != expected.source:
        raise _bad(name, f"the control file says Source {source}, but this build is of {expected.source}")
    if source_version != expected.version:
        raise _bad(name, f"the control file says source version {source_version}, but this build is "
                         f"{expected.source} {expected.version}")
    if version != expected.version and not (version.startswith(expected.version)
                                            and _BINNMU_RE.fullmatch(version[len(expected.version):])):
        raise _bad(name, f"Version {version} is neither the source's version {expected.version} nor a binNMU of it "
                         f"({expected.version}+bN)")
    allowed = expected.binaries | {f"{b}-dbgsym" for b in expected.binaries}
    if package not in allowed:
        raise _bad(name, f"package {package} is not one the source builds "
                         f"({', '.join(sorted(expected.binaries)) or 'its .dsc names none'})")
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
            select(Task.id).where(Task.parent_id == build.task_id, Task.method == TaskMethod.BUILD_ARCH,
                                  Task.state == TaskState.CLOSED)
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
