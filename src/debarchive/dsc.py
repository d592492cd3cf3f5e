"""Fetch a source package (.dsc and the files it names) from a path or an http(s) URL and verify it.

Every file named in the .dsc is checked against every checksum the .dsc carries (Checksums-Sha256,
Checksums-Sha1, Files/md5) and its size. Errors name the file and, for downloads, the URL.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlparse

from debian.deb822 import Dsc

from debarchive.digest import file_digests

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+~_-]*$")
_HASHES = (("Checksums-Sha256", "sha256"), ("Checksums-Sha1", "sha1"), ("Files", "md5sum"))

# httpx (about 50 ms to import, a fifth of deb-mock's start) only when something is fetched
if TYPE_CHECKING:
    import httpx


class SourcePackageError(ValueError):
    """The source package is missing, unreadable, corrupt or unsafe. The message says which and where."""


class SourceFetchError(SourcePackageError):
    """A file could not be downloaded (HTTP error or network failure); ``url`` names it."""

    def __init__(self, message: str, url: str, *, network: bool = False) -> None:
        super().__init__(message)
        self.url = url
        self.network = network  # True when the server was unreachable (worth a retry)


@dataclass(frozen=True)
class SourceFile:
    name: str
    size: int
    sha256: str


@dataclass(frozen=True)
class SourcePackage:
    """A verified source package whose files all sit in ``directory``."""

    dsc_path: Path
    source: str
    version: str
    binaries: tuple[str, ...]
    architectures: tuple[str, ...]
    files: tuple[SourceFile, ...]
    fields: dict[str, str]

    @property
    def directory(self) -> Path:
        return self.dsc_path.parent

    @property
    def build_depends(self) -> str:
        return ", ".join(
            v for k in ("Build-Depends", "Build-Depends-Arch", "Build-Depends-Indep") if (v := self.fields.get(k))
        )

    @property
    def build_conflicts(self) -> str:
        return ", ".join(
            v
            for k in ("Build-Conflicts", "Build-Conflicts-Arch", "Build-Conflicts-Indep")
            if (v := self.fields.get(k))
        )

    @property
    def ident(self) -> str:
        """``SOURCE_VERSION`` as used for build identity (epoch dropped, as in file names)."""
        return f"{self.source}_{strip_epoch(self.version)}"


def strip_epoch(version: str) -> str:
    return version.split(":", 1)[1] if ":" in version else version


def is_url(ref: str) -> bool:
    return urlparse(ref).scheme in ("http", "https")


def safe_name(name: str, what: str = "file name") -> str:
    """Refuse names with path separators, '..' or odd characters (they come from untrusted .dsc files)."""
    if not name or "/" in name or name in (".", "..") or not _NAME_RE.match(name):
        raise SourcePackageError(f"unsafe {what} {name!r}: only a plain file name is allowed")
    return name


def parse_dsc(path: Path) -> SourcePackage:
    """Parse a .dsc file (clear-signed or not); does not look at the files it names."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SourcePackageError(f"{path}: no such file") from None
    except OSError as exc:
        raise SourcePackageError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        dsc = Dsc(raw)
    except Exception as exc:  # python-debian raises several types on garbage
        raise SourcePackageError(f"{path}: not a valid .dsc: {exc}") from None
    for key in ("Source", "Version"):
        if not dsc.get(key):
            raise SourcePackageError(f"{path}: not a valid .dsc: the {key} field is missing")
    files: dict[str, dict[str, str]] = {}
    for field_name, key in _HASHES:
        for entry in dsc.get(field_name, []) or []:
            name = safe_name(entry.get("name", ""), f"file name in {path.name}")
            files.setdefault(name, {})[key] = entry[key]
            files[name]["size"] = entry["size"]
    if not files:
        raise SourcePackageError(f"{path}: not a valid .dsc: it names no files (Files/Checksums-Sha256)")
    for name, sums in files.items():
        if "sha256" not in sums:
            raise SourcePackageError(f"{path}: {name} has no SHA-256 checksum; refusing an unverifiable source")
    fields = {k: str(v) for k, v in dsc.items() if isinstance(v, str)}
    return SourcePackage(
        dsc_path=path,
        source=str(dsc["Source"]),
        version=str(dsc["Version"]),
        binaries=tuple(b.strip() for b in str(dsc.get("Binary", "")).split(",") if b.strip()),
        architectures=tuple(str(dsc.get("Architecture", "any")).split()),
        files=tuple(SourceFile(n, int(s["size"]), s["sha256"]) for n, s in sorted(files.items())),
        fields=fields,
    )


def _all_sums(path: Path) -> dict[str, str]:
    sums = file_digests(path, ("sha256", "sha1", "md5"))[1]
    return {"sha256": sums["sha256"], "sha1": sums["sha1"], "md5sum": sums["md5"]}


def verify(pkg: SourcePackage) -> None:
    """Check every file of ``pkg`` against every checksum and size in its .dsc."""
    dsc = Dsc(pkg.dsc_path.read_bytes())
    expected: dict[str, dict[str, str]] = {}
    for field_name, key in _HASHES:
        for entry in dsc.get(field_name, []) or []:
            expected.setdefault(entry["name"], {})[key] = entry[key].lower()
            expected[entry["name"]]["size"] = entry["size"]
    for name, sums in sorted(expected.items()):
        path = pkg.directory / name
        if not path.is_file():
            raise SourcePackageError(f"{pkg.dsc_path.name}: {name} is missing (expected in {pkg.directory})")
        size = path.stat().st_size
        if size != int(sums["size"]):
            raise SourcePackageError(
                f"{pkg.dsc_path.name}: {name} has size {size}, the .dsc says {sums['size']} (corrupt or truncated)"
            )
        actual = _all_sums(path)
        for key in ("sha256", "sha1", "md5sum"):
            if key in sums and actual[key] != sums[key]:
                raise SourcePackageError(
                    f"{pkg.dsc_path.name}: {key} mismatch for {name}: the .dsc says {sums[key]}, "
                    f"the file has {actual[key]} (corrupt or tampered)"
                )


def _download(client: httpx.Client, url: str, dest: Path) -> None:
    import httpx

    tmp = dest.with_name(f".{dest.name}.part")
    try:
        with client.stream("GET", url) as resp:
            if resp.status_code != 200:
                hint = ""
                if resp.status_code == 404 and "deb.debian.org" in url:
                    hint = (
                        " (the Debian mirror serves source files only for versions bookworm also has;"
                        " pick such a version or build from a local .dsc)"
                    )
                raise SourceFetchError(f"cannot fetch {url}: HTTP {resp.status_code}{hint}", url)
            with open(tmp, "wb") as fh:
                for chunk in resp.iter_bytes(1 << 20):
                    fh.write(chunk)
    except httpx.HTTPError as exc:
        tmp.unlink(missing_ok=True)
        raise SourceFetchError(f"cannot fetch {url}: {exc}", url, network=True) from None
    tmp.rename(dest)


def fetch(
    ref: str | Path,
    dest: Path,
    *,
    timeout: float = 60.0,
    authenticate: Callable[[Path, str], None] | None = None,
) -> SourcePackage:
    """Fetch (URL) or copy (path) a .dsc and its files into ``dest``, verify them, return the package.

    A local .dsc's files are taken from beside it. ``dest`` is created if needed. For a URL,
    ``authenticate(dsc_path, url)`` is called on the downloaded .dsc before any file it names is fetched
    (see :mod:`debarchive.sourceauth`); it raises to refuse the source.
    """
    dest.mkdir(parents=True, exist_ok=True)
    ref_s = str(ref)
    if is_url(ref_s):
        import httpx

        dsc_name = safe_name(Path(urlparse(ref_s).path).name, "a .dsc URL's file name")
        with httpx.Client(timeout=timeout, follow_redirects=True) as client:
            _download(client, ref_s, dest / dsc_name)
            pkg = parse_dsc(dest / dsc_name)
            if authenticate is not None:
                authenticate(dest / dsc_name, ref_s)
            for f in pkg.files:
                target = dest / f.name
                if target.is_file() and target.stat().st_size == f.size:
                    continue
                _download(client, urljoin(ref_s, f.name), target)
    else:
        src = Path(ref_s).expanduser().resolve()
        first = parse_dsc(src)
        if src.parent != dest.resolve():
            shutil.copy2(src, dest / src.name)
            for f in first.files:
                try:
                    shutil.copy2(src.parent / f.name, dest / f.name)
                except FileNotFoundError:
                    raise SourcePackageError(
                        f"{src.name}: {f.name} is missing (expected beside the .dsc in {src.parent})"
                    ) from None
        pkg = parse_dsc(dest / src.name)
    verify(pkg)
    return pkg


def fetch_to_temp(ref: str | Path, parent: Path | None = None) -> SourcePackage:
    """Like :func:`fetch` into a new temporary directory (the caller removes ``pkg.directory``)."""
    return fetch(ref, Path(tempfile.mkdtemp(prefix="dsc-", dir=parent)))
