"""Extra apt repositories for a build: ``--addrepo`` lines, the config's ``[[repos]]``, and their keys.

Every extra repository, wherever it comes from (the command line, a config, the API, ``--chain``), goes
through the same checks before it reaches a sandbox: an ``http``, ``https`` or ``file`` URL (a ``file:``
repository must be an existing directory; it is bound read-only into the apt sandbox), and a key that is a
local OpenPGP *public* key: a file that exists and is read and copied here (never a URL, never fetched), or
armoured key text. apt fetches the repository in the networked apt sandbox and verifies its signature with
that key as it does for the mirror; the build itself never has the network.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from deb_mock.config import MockConfig
from deb_mock.request import AptSource
from debarchive.safeio import UnsafeEntry, read_named_file

MAX_KEY_BYTES = 1 << 20
_ARMOR_PUBLIC = b"-----BEGIN PGP PUBLIC KEY BLOCK-----"
_ARMOR_SECRET = b"-----BEGIN PGP PRIVATE KEY BLOCK-----"
_LINE = re.compile(r"^(?:(?P<kind>deb(?:-src)?)\s+)?(?:\[(?P<opts>[^\]]*)\]\s*)?(?P<rest>.*)$")
_WORD = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._~+/-]*$")
_SUITE = re.compile(r"^[A-Za-z0-9._~+/-]+$")  # "./" for a flat repository
SCHEMES = ("http", "https", "file")


class SourceError(ValueError):
    """An extra apt repository that cannot be used; the message says which and why."""


def parse_line(line: str, base: Path | None = None) -> AptSource:
    """An ``--addrepo`` argument: ``"deb [signed-by=KEY] URL SUITE COMPONENT…"`` (``deb`` may be left out).

    ``signed-by`` is the only option: the path of a local key file (relative to ``base``, default the
    current directory). Without it the repository must be signed by a key the chroot already trusts
    (Debian's archive keys).
    """
    m = _LINE.match(line.strip())
    assert m is not None  # the pattern matches any string
    if m["kind"] == "deb-src":
        raise SourceError(f"{line!r}: a deb-src line; --addrepo takes binary repositories (deb …)")
    key: str | None = None
    for opt in (m["opts"] or "").split():
        name, _, value = opt.partition("=")
        if name != "signed-by" or not value:
            raise SourceError(
                f"{line!r}: option {opt!r} not accepted; the only option is signed-by=KEYFILE (a local file)"
            )
        if "://" in value:
            raise SourceError(f"{line!r}: signed-by={value} is a URL; give a local key file (keys are never fetched)")
        key = str((base or Path.cwd()) / Path(value).expanduser())
    words = m["rest"].split()
    if len(words) < 2:
        raise SourceError(f"{line!r}: expected 'deb [signed-by=KEYFILE] URL SUITE COMPONENT…'")
    url, suite, components = words[0], words[1], tuple(words[2:])
    src = AptSource(url=url, suite=suite, components=components, key=key)
    check_source(src, where=repr(line))
    return src


def check_source(src: AptSource, where: str | None = None) -> None:
    """Refuse what apt should never be given: other URL schemes, odd suite or component names."""
    where = where or src.url
    parts = urlsplit(src.url)
    if parts.scheme not in SCHEMES:
        raise SourceError(f"{where}: URL {src.url!r}: use an http://, https:// or file: URL")
    if parts.scheme in ("http", "https") and not parts.hostname:
        raise SourceError(f"{where}: URL {src.url!r} names no host")
    if parts.scheme == "file":
        path = Path(file_path(src.url))
        if not path.is_absolute() or not path.is_dir():
            raise SourceError(f"{where}: {src.url}: no such directory (a file: repository is a local directory)")
    if not _SUITE.match(src.suite) or ".." in src.suite.split("/"):
        raise SourceError(f"{where}: suite {src.suite!r} is not a suite name")
    flat = src.suite.endswith("/")
    if flat and src.components:
        raise SourceError(f"{where}: a flat repository (suite {src.suite!r}) takes no components")
    if not flat and not src.components:
        raise SourceError(f"{where}: name at least one component after the suite (e.g. main)")
    for c in src.components:
        if not _WORD.match(c) or ".." in c.split("/"):
            raise SourceError(f"{where}: component {c!r} is not a component name")


def file_path(url: str) -> str:
    """The directory of a ``file:`` URL (``file:/srv/repo`` and ``file:///srv/repo`` alike)."""
    return "/" + url.removeprefix("file:").lstrip("/")


def key_material(key: str, where: str) -> tuple[bytes, str]:
    """The key's bytes and the file suffix apt wants for them (``.asc`` armoured, ``.gpg`` binary).

    ``key`` is armoured key text or the path of a key file (armoured or binary). Secret keys, files that
    are not OpenPGP public keys, missing or oversized files are refused with a :class:`SourceError`.
    """
    if "-----BEGIN PGP" in key:
        data, shown = key.encode(), "the key text"
    else:
        data, shown = _read_key_file(Path(key), where), key
    if data.lstrip().startswith(_ARMOR_SECRET) or (data[:1] and _packet_tag(data[0]) in (5, 7)):
        raise SourceError(f"{where}: {shown} is a SECRET key; give the repository's public key (nothing was copied)")
    if data.lstrip().startswith(_ARMOR_PUBLIC):
        return data, ".asc"
    if data[:1] and _packet_tag(data[0]) == 6:
        return data, ".gpg"
    raise SourceError(f"{where}: {shown} is not an OpenPGP public key (armoured .asc or binary .gpg)")


def _packet_tag(first: int) -> int | None:
    """The OpenPGP packet tag of a binary key's first byte (RFC 4880 4.2), or None."""
    if not first & 0x80:
        return None
    return first & 0x3F if first & 0x40 else (first >> 2) & 0x0F


def _read_key_file(path: Path, where: str) -> bytes:
    try:
        return read_named_file(path, MAX_KEY_BYTES)
    except FileNotFoundError:
        raise SourceError(f"{where}: key file {path} does not exist") from None
    except UnsafeEntry as exc:
        not_key = "; not a key" if "larger" in exc.what else ""
        raise SourceError(f"{where}: key file {path} {exc.what}{not_key}") from None
    except OSError as exc:
        raise SourceError(f"{where}: key file {path}: {exc.strerror}") from None


def config_sources(config: MockConfig) -> list[AptSource]:
    """The config's ``[[repos]]`` as apt sources; a relative key path is relative to the config's file."""
    base = Path(config.source_file).parent if config.source_file else Path.cwd()
    out = []
    for repo in config.repos:
        key = repo.key
        if key and "-----BEGIN PGP" not in key:
            key = str(base / Path(key).expanduser())
        out.append(AptSource(repo.url, repo.suite, tuple(repo.components), key, repo.trusted))
    return out
