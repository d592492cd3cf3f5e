"""Authenticating a source package fetched over the network, before anything unpacks it.

A .dsc that came over HTTP is only as trustworthy as the chain that vouches for its bytes:

1. **The archive's signed index** (what apt does for binaries): the mirror's ``dists/SUITE/InRelease`` is
   verified with the archive keyring (``gpgv``), its SHA256 list gives the checksum of
   ``COMPONENT/source/Sources.xz`` (and of the uncompressed ``Sources``), and the Sources entry of the
   package's version gives the .dsc's SHA-256 and size. Every suite in ``suites`` is tried, in order (a
   version may live only in an older suite). Verified indices are cached under ``cache_dir`` by checksum.
2. Failing that, **the .dsc's own OpenPGP signature** (``gpgv``) against the configured source keyrings
   (e.g. Debian's ``debian-keyring``); the signed text must be the whole .dsc.

The files the .dsc names are then checked against the .dsc's own checksums (:func:`debarchive.dsc.verify`).
Anything else is refused with :class:`SourceAuthError`, whose message names the URL and what to do.
"""

from __future__ import annotations

import base64
import calendar
import contextlib
import email.utils
import hashlib
import lzma
import mmap
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from debian.deb822 import Deb822, Dsc

from debarchive.digest import sha256_file
from debarchive.dsc import SourcePackageError
from debsandbox.commands import run

Log = Callable[[str], None]

# httpx (about 50 ms to import, a fifth of deb-mock's start) only when something is fetched
if TYPE_CHECKING:
    import httpx


class SourceAuthError(SourcePackageError):
    """The source could not be authenticated; the message names the URL and how to proceed."""


@dataclass(frozen=True)
class Verification:
    """How a source package was (or was not) authenticated; recorded in result.json."""

    verified: bool
    trust: str  # "archive" (signed index), "signature" (.dsc's own), "checksum" (given by the caller),
    # "caller" (the caller's own: a local file or tree, or vouched for through the API), "none"
    how: str  # one line for people


@dataclass
class SourceTrust:
    """What a fetched .dsc may be checked against."""

    mirrors: list[str]  # mirror base URLs (".../debian"), besides the base the URL itself points into
    suites: list[str]  # tried in this order
    components: list[str]
    archive_keyrings: list[Path]  # verify InRelease
    source_keyrings: list[Path] = field(default_factory=list)  # verify a .dsc's own signature
    cache_dir: Path | None = None  # verified Sources indices are kept here
    check_valid_until: bool = True
    timeout: float = 120.0
    max_index_bytes: int = 1 << 30  # an InRelease or Sources.xz larger than this is not used


@dataclass(frozen=True)
class Signed:
    content: bytes
    fingerprints: tuple[str, ...]


def _binary_keyring(path: Path, tmp: Path) -> Path:
    """gpgv reads binary keyrings and keyboxes; dearmour an ASCII-armoured key file into ``tmp``."""
    data = path.read_bytes()
    if b"-----BEGIN PGP PUBLIC KEY BLOCK-----" not in data:
        return path
    out = bytearray()
    for block in data.split(b"-----BEGIN PGP PUBLIC KEY BLOCK-----")[1:]:
        body = block.split(b"-----END PGP PUBLIC KEY BLOCK-----")[0]
        lines = body.strip().splitlines()
        # armour headers end at the first empty line, if any
        if b"" in [line.strip() for line in lines]:
            lines = lines[[line.strip() for line in lines].index(b"") + 1 :]
        b64 = b"".join(line.strip() for line in lines if line.strip() and not line.startswith(b"="))
        out += base64.b64decode(b64)
    dest = tmp / f"{len(list(tmp.iterdir()))}-{path.name}.gpg"
    dest.write_bytes(bytes(out))
    return dest


def verify_clearsigned(data: bytes, keyrings: list[Path], what: str) -> Signed:
    """Check an inline-signed document with ``gpgv``; return the signed text and the signers' fingerprints.

    Accepted when at least one signature is good and made by a key in ``keyrings`` and none is bad
    (a signature by a key we do not have is ignored, as apt does). Raises :class:`SourceAuthError`.
    """
    usable = [k for k in keyrings if k.is_file()]
    if not usable:
        looked = ", ".join(map(str, keyrings)) or "none"
        raise SourceAuthError(f"{what}: no keyring to check the signature with (looked for {looked})")
    with tempfile.TemporaryDirectory(prefix="debarchive-gpgv-") as tmpdir:
        tmp = Path(tmpdir)
        kr = tmp / "keyrings"
        kr.mkdir()
        signed = tmp / "signed"
        signed.write_bytes(data)
        out = tmp / "content"
        argv = ["gpgv", "--status-fd", "1", "--output", str(out)]
        for k in usable:
            argv += ["--keyring", str(_binary_keyring(k, kr).absolute())]
        res = run([*argv, str(signed)], env={**os.environ, "LC_ALL": "C.UTF-8", "GNUPGHOME": str(tmp)},
                  capture=True, check=False, timeout=120)
        good: list[str] = []
        bad: list[str] = []
        for line in res.output.splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[0] == "[GNUPG:]":
                if parts[1] == "VALIDSIG":
                    good.append(parts[2])
                elif parts[1] in ("BADSIG", "EXPKEYSIG", "REVKEYSIG", "EXPSIG"):
                    bad.append(parts[2])
        if bad or not good or not out.exists():
            why = "a bad signature" if bad else "no good signature by a key in " + ", ".join(map(str, usable))
            raise SourceAuthError(f"{what}: {why}")
        return Signed(out.read_bytes(), tuple(good))


def _get(client: httpx.Client, url: str, cap: int = 1 << 30) -> bytes | None:
    """The body at ``url`` (at most ``cap`` bytes); None when the server does not have it (404/410)."""
    import httpx

    with client.stream("GET", url) as resp:
        if resp.status_code in (404, 410):
            return None
        resp.raise_for_status()
        body = bytearray()
        for chunk in resp.iter_bytes():
            body += chunk
            if len(body) > cap:
                raise httpx.HTTPError(f"{url} sends more than {cap} bytes")
        return bytes(body)


def _release_sums(release: Deb822) -> dict[str, tuple[str, int]]:
    sums: dict[str, tuple[str, int]] = {}
    for line in str(release.get("SHA256", "")).splitlines():
        parts = line.split()
        if len(parts) == 3:
            sums[parts[2]] = (parts[0].lower(), int(parts[1]))
    return sums


def _valid_until_passed(release: Deb822) -> bool:
    value = release.get("Valid-Until")
    if not value:
        return False
    parsed = email.utils.parsedate_tz(str(value))
    if parsed is None:
        return True
    return calendar.timegm(parsed[:9]) - (parsed[9] or 0) < time.time()


class _Indices:
    """Verified InRelease and Sources files of one mirror, cached by checksum."""

    def __init__(self, client: httpx.Client, trust: SourceTrust, log: Log) -> None:
        self.client = client
        self.trust = trust
        self.log = log
        self.cache = (trust.cache_dir / "source-indices") if trust.cache_dir else None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()

    def _store_dir(self) -> Path:
        if self.cache is not None:
            self.cache.mkdir(parents=True, exist_ok=True)
            return self.cache
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="debarchive-indices-")
        return Path(self._tmp.name)

    def release(self, base: str, suite: str) -> Deb822 | None:
        url = f"{base}/dists/{suite}/InRelease"
        import httpx

        try:
            raw = _get(self.client, url, self.trust.max_index_bytes)
        except httpx.HTTPError as exc:
            self.log(f"source check: {url}: {exc}")
            return None
        if raw is None:
            return None
        try:
            signed = verify_clearsigned(raw, self.trust.archive_keyrings, url)
        except SourceAuthError as exc:
            self.log(f"source check: {exc}; not using this index")
            return None
        release = Deb822(signed.content)
        if self.trust.check_valid_until and _valid_until_passed(release):
            self.log(f"source check: {url} expired (Valid-Until {release.get('Valid-Until')}); not using it")
            return None
        return release

    def sources(self, base: str, suite: str, component: str, release: Deb822) -> Path | None:
        """The verified, uncompressed Sources index of one component (downloaded once per checksum)."""
        sums = _release_sums(release)
        plain = sums.get(f"{component}/source/Sources")
        xz = sums.get(f"{component}/source/Sources.xz")
        if xz is None:
            return None
        key = plain[0] if plain else xz[0]
        store = self._store_dir()
        cached = store / f"Sources-{key}"
        if cached.is_file():
            return cached
        url = f"{base}/dists/{suite}/{component}/source/Sources.xz"
        import httpx

        try:
            raw = _get(self.client, url, self.trust.max_index_bytes)
        except httpx.HTTPError as exc:
            self.log(f"source check: {url}: {exc}")
            return None
        if raw is None or hashlib.sha256(raw).hexdigest() != xz[0] or len(raw) != xz[1]:
            self.log(f"source check: {url} is missing or does not match the signed InRelease; not using it")
            return None
        try:
            data = lzma.decompress(raw)
        except lzma.LZMAError:
            self.log(f"source check: {url}: cannot decompress; not using it")
            return None
        if plain and (hashlib.sha256(data).hexdigest() != plain[0] or len(data) != plain[1]):
            self.log(f"source check: {url} decompresses to something InRelease does not list; not using it")
            return None
        tmp = store / f".Sources-{key}.{os.getpid()}.{threading.get_ident()}"
        tmp.write_bytes(data)
        tmp.replace(cached)
        self._prune(store, keep_days=14)
        return cached

    def _prune(self, store: Path, keep_days: float) -> None:
        """Drop cached indices nobody used for ``keep_days`` (the mirror has moved on)."""
        limit = time.time() - keep_days * 86400
        for p in store.glob("Sources-*"):
            try:
                if p.stat().st_atime < limit and p.stat().st_mtime < limit:
                    p.unlink()
            except OSError:
                continue


def find_in_sources(index: Path, name: str, version: str) -> Deb822 | None:
    """The paragraph of source ``name`` at ``version`` in a Sources file (a fast scan, no full parse)."""
    needle = f"Package: {name}\n".encode()
    with open(index, "rb") as fh:
        if os.fstat(fh.fileno()).st_size == 0:
            return None
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            pos = 0 if mm[: len(needle)] == needle else mm.find(b"\n" + needle) + 1
            while pos > 0 or (pos == 0 and mm[: len(needle)] == needle):
                end = mm.find(b"\n\n", pos)
                para = Deb822(mm[pos : end if end >= 0 else len(mm)].decode("utf-8", "replace"))
                if para.get("Version") == version:
                    return para
                nxt = mm.find(b"\n" + needle, pos + 1)
                if nxt < 0:
                    break
                pos = nxt + 1
    return None


def _dsc_sum(para: Deb822, filename: str) -> tuple[str, int] | None:
    for line in str(para.get("Checksums-Sha256", "")).splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == filename:
            return parts[0].lower(), int(parts[1])
    return None


def mirror_base(url: str, mirrors: list[str]) -> list[str]:
    """The archive roots a pool URL may belong to: a configured mirror it lies under, or what precedes /pool/."""
    bases = [m.rstrip("/") for m in mirrors if url.startswith(m.rstrip("/") + "/")]
    path = urlparse(url).path
    if "/pool/" in path:
        head = url[: url.index("/pool/", len(url) - len(path))]
        if head not in bases:
            bases.append(head)
    return bases


DEFAULT_ADVICE = ("Build it from a local .dsc you trust, add the signer's keyring to the config's source_keyrings, "
                  "or pass --no-verify-source to build it unchecked")


def authenticate_dsc(url: str, dsc_path: Path, trust: SourceTrust, log: Log, *, client: httpx.Client | None = None,
                     advice: str = DEFAULT_ADVICE) -> Verification:
    """Authenticate the .dsc downloaded from ``url`` to ``dsc_path``; raise :class:`SourceAuthError` if it can't be.

    Tries the mirror's signed Sources indices, then the .dsc's own signature (see the module's docstring).
    ``client`` fetches the indices (e.g. one whose hooks fence in where it may go; default: a plain one);
    ``advice`` ends the message of the refusal (what the caller can do instead).
    """
    raw = dsc_path.read_bytes()
    dsc = Dsc(raw)
    name, version = str(dsc.get("Source", "")), str(dsc.get("Version", ""))
    filename = dsc_path.name
    digest, size = hashlib.sha256(raw).hexdigest(), len(raw)
    tried: list[str] = []
    mismatch: list[str] = []
    bases = mirror_base(url, trust.mirrors)
    with contextlib.ExitStack() as stack:
        if client is None:
            import httpx

            client = stack.enter_context(httpx.Client(timeout=trust.timeout, follow_redirects=True))
        indices = _Indices(client, trust, log)
        try:
            for base in bases:
                for suite in dict.fromkeys(trust.suites):
                    release = indices.release(base, suite)
                    if release is None:
                        tried.append(f"{base} {suite} (no usable signed InRelease)")
                        continue
                    for comp in trust.components:
                        index = indices.sources(base, suite, comp, release)
                        where = f"{base} {suite} {comp}"
                        tried.append(where)
                        para = find_in_sources(index, name, version) if index else None
                        expected = _dsc_sum(para, filename) if para is not None else None
                        if expected is None:
                            continue
                        if expected == (digest, size):
                            how = f"found in the signed index of {where} (InRelease checked with the archive keyring)"
                            return Verification(True, "archive", how)
                        mismatch.append(where)
        finally:
            indices.close()
    if mismatch:
        raise SourceAuthError(
            f"{url} does not match the archive: the signed index of {', '.join(mismatch)} lists {filename} "
            f"with another checksum (sha256 {digest}, {size} bytes here): tampered or corrupt, refusing it"
        )
    why_index = f"{name} {version} is in no signed index ({'; '.join(tried) or 'no mirror index reachable'})"
    if not trust.source_keyrings:
        sig_reason = "no source keyring is configured (source_keyrings)"
    else:
        try:
            signed = verify_clearsigned(raw, trust.source_keyrings, f"{url}'s OpenPGP signature")
            if dict(Deb822(signed.content)) != dict(Deb822(raw)):
                raise SourceAuthError(f"{url}: the .dsc has text outside its signed part")
            signers = ", ".join(signed.fingerprints)
            return Verification(True, "signature", f"signed by {signers} (a key in the source keyrings)")
        except SourceAuthError as exc:
            sig_reason = str(exc)
    raise SourceAuthError(
        f"cannot authenticate {url}: {why_index}, and {sig_reason}. {advice}"
    )


def check_sha256(path: Path, expected: str, url: str) -> Verification:
    """A .dsc the caller vouches for by checksum (e.g. the hub's record of an uploaded source)."""
    actual = sha256_file(path)
    if actual != expected.lower():
        raise SourceAuthError(
            f"{url}: sha256 {actual} is not the expected {expected}; refusing it (tampered or changed)"
        )
    return Verification(True, "checksum", f"the .dsc's sha256 matches the one the caller gave ({expected})")
