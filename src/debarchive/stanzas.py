"""Index entries of an apt repository: a binary package's Packages stanza, a source package's Sources
stanza, read from the files once (:func:`scan_deb`, :func:`scan_dsc`) or from kept text (``from_stanza``)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from debian.deb822 import Deb822, Dsc
from debian.debfile import DebFile

from debarchive.digest import hashes_file
from debarchive.pool import (
    ARCH_RE,
    PKG_RE,
    VERSION_RE,
    RepoError,
    add_to_pool,
    check_relative_path,
    pool_path,
)
from debsandbox.commands import CommandError, output

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
# Fields apt-ftparchive/dak put after a package's control fields, in this order.
_INDEX_FIELDS = ("Filename", "Size", "MD5sum", "SHA1", "SHA256", "SHA512", "Description-md5")
# Order of the first fields of a Packages stanza (the rest keep the control file's order).
_CONTROL_FIRST = ("Package", "Source", "Version")


def _format_stanza(fields: Iterable[tuple[str, str]]) -> str:
    """Render deb822 fields (multi-line values already carry their continuation lines)."""
    lines = []
    for name, value in fields:
        value = value.rstrip("\n")
        if not value.strip():
            continue
        sep = "" if value.startswith("\n") else " "
        lines.append(f"{name}:{sep}{value}")
    return "\n".join(lines) + "\n"


def _parse_source_field(value: str, version: str) -> tuple[str, str]:
    m = re.match(r"^\s*(\S+)(?:\s*\(\s*(\S+)\s*\))?\s*$", value)
    if not m:
        raise RepoError(f"invalid Source field {value!r}")
    return m.group(1), m.group(2) or version


@dataclass(frozen=True)
class PackageEntry:
    """One binary package of a repository, with its complete Packages stanza."""

    name: str
    version: str
    arch: str
    source: str
    source_version: str
    filename: str
    size: int
    sha256: str
    stanza: str

    @classmethod
    def from_stanza(cls, stanza: str) -> PackageEntry:
        """Rebuild an entry from a stanza this module wrote (e.g. kept in a database)."""
        fields = Deb822(stanza)
        try:
            name, version, arch = fields["Package"], fields["Version"], fields["Architecture"]
            filename, size, sha256 = fields["Filename"], int(fields["Size"]), fields["SHA256"]
        except (KeyError, ValueError) as exc:
            raise RepoError(f"Packages stanza lacks a valid {exc} field:\n{stanza[:300]}") from exc
        source, source_version = _parse_source_field(fields.get("Source", name), version)
        entry = cls(name, version, arch, source, source_version, filename, size, sha256, stanza.strip("\n") + "\n")
        entry.validate()
        return entry

    def validate(self) -> None:
        where = f"package {self.name} {self.version} ({self.filename})"
        if not PKG_RE.match(self.name):
            raise RepoError(f"{where}: invalid package name {self.name!r}")
        if not PKG_RE.match(self.source):
            raise RepoError(f"{where}: invalid source name {self.source!r}")
        for v in (self.version, self.source_version):
            if not VERSION_RE.match(v):
                raise RepoError(f"{where}: invalid version {v!r}")
        if not ARCH_RE.match(self.arch):
            raise RepoError(f"{where}: invalid architecture {self.arch!r}")
        check_relative_path(self.filename, "Filename")
        if not _HEX64.match(self.sha256) or self.size < 0:
            raise RepoError(f"{where}: invalid SHA256/Size")
        if "\n\n" in self.stanza.strip("\n") or not self.stanza.startswith("Package: "):
            raise RepoError(f"{where}: a stanza must start with 'Package:' and hold no blank line")


def _read_control(path: Path) -> str:
    """The control file of a .deb: in-process with python-debian (fast), or with ``dpkg-deb`` for what
    python-debian cannot read (it has the authoritative error message for broken files)."""
    try:
        with DebFile(filename=str(path)) as deb:
            raw = deb.control.get_content("control")
        if raw:
            return raw.decode("utf-8")
    except Exception:  # any failure: let dpkg-deb decide and explain
        pass
    try:
        text = output(["dpkg-deb", "--field", str(path)], extra_env={"LC_ALL": "C.UTF-8"}, timeout=120)
    except CommandError as exc:
        raise RepoError(f"{path} is not a readable .deb: {exc.tail.strip()}") from exc
    # stdout and stderr arrive merged: drop dpkg-deb's own warnings, keep the control file
    return "".join(line for line in text.splitlines(keepends=True) if not line.startswith("dpkg-deb: "))


def scan_deb(path: Path, filename: str | None = None, component: str = "main") -> PackageEntry:
    """Read a .deb once and return its entry; ``filename`` is its pool-relative path (the ``Filename:``),
    by default Debian's pool location from its source name (:func:`pool_path`)."""
    path = Path(path)
    if filename is not None:
        check_relative_path(filename, "Filename")
    if not path.is_file():
        raise RepoError(f"cannot scan {path}: no such file")
    control = Deb822(_read_control(path))
    for required in ("Package", "Version", "Architecture"):
        if required not in control:
            raise RepoError(f"{path}: control file has no {required} field; not a valid binary package")
    name, version = control["Package"], control["Version"]
    source, source_version = _parse_source_field(control.get("Source", name), version)
    if filename is None:
        filename = pool_path(source, path.name, component)
    size, md5, sha256 = hashes_file(path)
    ordered: list[tuple[str, str]] = [(k, control[k]) for k in _CONTROL_FIRST if k in control]
    ordered += [(k, v) for k, v in control.items() if k not in _CONTROL_FIRST and k not in _INDEX_FIELDS]
    ordered += [("Filename", filename), ("Size", str(size)), ("MD5sum", md5), ("SHA256", sha256)]
    entry = PackageEntry(name, version, control["Architecture"], source, source_version, filename, size, sha256,
                         _format_stanza(ordered))
    entry.validate()
    return entry


def import_deb(root: Path, deb: Path, component: str = "main") -> PackageEntry:
    """Scan ``deb``, put it at its pool location under ``root`` and return its entry (one read of the file)."""
    entry = scan_deb(deb, None, component)
    add_to_pool(root, deb, entry.filename)
    return entry


@dataclass(frozen=True)
class SourceEntry:
    """One source package of a repository, with its complete Sources stanza."""

    name: str
    version: str
    directory: str
    files: tuple[str, ...]
    stanza: str

    @classmethod
    def from_stanza(cls, stanza: str) -> SourceEntry:
        fields = Deb822(stanza)
        try:
            name, version, directory = fields["Package"], fields["Version"], fields["Directory"]
        except KeyError as exc:
            raise RepoError(f"Sources stanza lacks a {exc} field:\n{stanza[:300]}") from exc
        files = tuple(line.split()[2] for line in fields.get("Checksums-Sha256", "").strip().splitlines() if line)
        return cls(name, version, directory, files, stanza.strip("\n") + "\n")


_SOURCE_FIRST = ("Package", "Binary", "Version", "Maintainer", "Uploaders", "Build-Depends", "Build-Depends-Indep",
                 "Build-Depends-Arch", "Architecture", "Standards-Version", "Format")
_SOURCE_DROP = ("Source", "Files", "Checksums-Sha1", "Checksums-Sha256", "Checksums-Sha512", "Directory")


def scan_dsc(dsc: Path, directory: str) -> SourceEntry:
    """Read a .dsc (signed or not) and return its Sources entry; ``directory`` is the pool directory
    holding it and its files (e.g. ``pool/main/h/hello``). The .dsc's own hashes are computed here."""
    dsc = Path(dsc)
    directory = check_relative_path(directory.rstrip("/"), "Directory")
    try:
        with open(dsc, "rb") as fh:
            fields = Dsc(fh)
    except OSError as exc:
        raise RepoError(f"cannot read {dsc}: {exc}") from exc
    for required in ("Source", "Version", "Checksums-Sha256", "Files"):
        if required not in fields:
            raise RepoError(f"{dsc}: no {required} field; not a valid .dsc")
    name, version = fields["Source"], fields["Version"]
    if not PKG_RE.match(name) or not VERSION_RE.match(version):
        raise RepoError(f"{dsc}: invalid Source {name!r} or Version {version!r}")
    size, md5, sha256 = hashes_file(dsc)
    sha_lines = [f" {f['sha256']} {f['size']} {f['name']}" for f in fields["Checksums-Sha256"]]
    md5_lines = [f" {f['md5sum']} {f['size']} {f['name']}" for f in fields["Files"]]
    for n in [f["name"] for f in fields["Checksums-Sha256"]]:
        check_relative_path(n, f"file name in {dsc.name}")
    files = (dsc.name, *(f["name"] for f in fields["Checksums-Sha256"]))
    ordered: list[tuple[str, str]] = [("Package", name)]
    ordered += [(k, fields.get_as_string(k)) for k in _SOURCE_FIRST[1:] if k in fields]
    ordered += [(k, fields.get_as_string(k)) for k in fields if k not in _SOURCE_FIRST and k not in _SOURCE_DROP]
    ordered += [
        ("Directory", directory),
        ("Files", "\n" + "\n".join([f" {md5} {size} {dsc.name}", *md5_lines])),
        ("Checksums-Sha256", "\n" + "\n".join([f" {sha256} {size} {dsc.name}", *sha_lines])),
    ]
    return SourceEntry(name, version, directory, files, _format_stanza(ordered))


def import_dsc(root: Path, dsc: Path, component: str = "main") -> SourceEntry:
    """Verify a source package (every file against the .dsc's checksums), put the .dsc and its files in
    the pool under ``root`` and return its Sources entry."""
    from debarchive.dsc import SourcePackageError, parse_dsc, verify  # imports httpx: only when needed

    try:
        pkg = parse_dsc(Path(dsc))
        verify(pkg)
    except SourcePackageError as exc:
        raise RepoError(str(exc)) from exc
    directory = pool_path(pkg.source, pkg.dsc_path.name, component).rsplit("/", 1)[0]
    for f in pkg.files:
        add_to_pool(root, pkg.directory / f.name, f"{directory}/{f.name}")
    add_to_pool(root, pkg.dsc_path, f"{directory}/{pkg.dsc_path.name}")
    return scan_dsc(Path(root) / directory / pkg.dsc_path.name, directory)
