"""Source packages users hand the hub: uploads and .dsc URLs, checked before anything is stored.

A user's URL makes the hub an HTTP client, so fetching is fenced in:

- only hosts on an allow-list are contacted: the hosts of the external repositories of the target's tags
  (inherited ones included) and those given with ``hub --allow-source-host HOST[:PORT]``; a URL off the list
  is refused with 403 before any connection, and a redirect is followed only to a host on the list;
- a .dsc is at most 1 MiB, each file at most the size the .dsc declares, all together at most
  ``source_max_bytes``; all files of one package within ``source_timeout`` seconds (a slow drip is cut off);
- fetches run in a small pool of their own (``source_fetch_workers`` threads, ``source_fetch_queue`` more
  waiting, then 503): the request waits for its fetch without holding one of the request threads, so hostile
  URLs cannot starve heartbeats or the API;
- the fetched .dsc is authenticated before any of its files is fetched (:mod:`debarchive.sourceauth`): it must
  be listed, with its SHA-256 and size, in a Sources index of the mirror it comes from whose InRelease is signed
  by a key the target's buildroots trust (the keys of the target's tags' external repositories; Debian's
  archive keyring for those without one), in one of the external repositories' suites or a sibling release;
  or carry an OpenPGP signature by a key in ``hub --source-keyring``. Otherwise 422, nothing stored, unless the
  hub runs with ``--no-verify-source`` (logged, and recorded on the build).
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import SplitResult, urljoin, urlsplit

import httpx

from deb_orchestrator.hub.config import HubSettings
from deb_orchestrator.hub.errors import HubError
from debarchive import dsc
from debarchive.pool import PKG_RE, VERSION_RE
from debarchive.sourceauth import SourceAuthError, SourceTrust, Verification, authenticate_dsc

MAX_DSC_BYTES = 1 << 20
MAX_REDIRECTS = 5
MAX_INDEX_BYTES = 256 << 20  # an InRelease or Sources.xz the hub reads (into memory) to authenticate a .dsc
DEBIAN_ARCHIVE_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
# Debian's releases, newest first: a version may live only in another release than the external repo's
DEBIAN_RELEASES = ("sid", "forky", "trixie", "bookworm", "bullseye")
DEBIAN_ALIASES = {"unstable": "sid", "testing": "forky", "stable": "trixie", "oldstable": "bookworm"}
SUITE_SUFFIXES = ("-updates", "-backports", "-proposed-updates", "-security")
ADVICE = ("Upload the source package instead (POST /api/v1/builds/upload, `deb-orchestrator build TARGET "
          "FILE.dsc`: an upload is trusted as your own), or ask the hub's admin (hub --source-keyring KEYRING for "
          "the signer's key; hub --no-verify-source to accept sources unchecked)")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExternalOrigin:
    """An external repository of the target's tags: where its sources may be looked up, and its key."""

    url: str
    suite: str
    components: tuple[str, ...]
    key: str | None  # ASCII-armoured; None: Debian's archive keyring (what the buildroots use then)


def suites_to_try(suites: Iterable[str]) -> list[str]:
    """The external repos' suites, then their sibling Debian releases (older ones first, then newer ones)."""
    out = list(dict.fromkeys(suites))
    for suite in list(out):
        base = suite
        for suffix in SUITE_SUFFIXES:
            base = base.removesuffix(suffix)
        base = DEBIAN_ALIASES.get(base, base)
        if base in DEBIAN_RELEASES:
            i = DEBIAN_RELEASES.index(base)
            out += [base, *DEBIAN_RELEASES[i + 1:], *reversed(DEBIAN_RELEASES[:i])]
    return list(dict.fromkeys(out))


class SourceUnverified(HubError):
    status = 422


class SourceRefused(HubError):
    status = 403


def _size(n: int) -> str:
    return f"{n / (1 << 20):g} MiB" if n < 1 << 30 else f"{n / (1 << 30):g} GiB"


def split_url(url: str) -> tuple[SplitResult, str, int]:
    """(parts, host, port) of an http(s) URL; HubError 400 when it cannot be parsed."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise HubError(f"cannot parse the URL {url!r}: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise HubError(f"URL {url!r}: only http and https are fetched")
    if not host:
        raise HubError(f"URL {url!r} names no host")
    if any(c.isspace() for c in url):
        raise HubError(f"URL {url!r} holds white space")
    return parts, host, port


def allowed_hosts(external_urls: Iterable[str], extra: Iterable[str]) -> frozenset[str]:
    """``host`` (any port) or ``host:port`` entries: the hosts of the tags' external repos and the extras."""
    hosts = set()
    for url in external_urls:
        try:
            host = (urlsplit(url).hostname or "").lower()
        except ValueError:
            continue
        if host:
            hosts.add(host)
    hosts.update(h.strip().lower() for h in extra if h.strip())
    return frozenset(hosts)


def check_allowed(url: str, allowed: frozenset[str], what: str = "source URL") -> None:
    _, host, port = split_url(url)
    if host in allowed or f"{host}:{port}" in allowed:
        return
    raise SourceRefused(
        f"{what} {url}: the host {host} is not on this hub's source allow-list "
        f"({', '.join(sorted(allowed)) or 'empty'}: the hosts of the target's external repositories and "
        "`hub --allow-source-host`); nothing was fetched. Upload the source package instead, or ask an admin")


def parse(dsc_path: Path) -> dsc.SourcePackage:
    """Parse a .dsc (not its files); every malformed field is a 400 naming it."""
    try:
        pkg = dsc.parse_dsc(dsc_path)
    except dsc.SourcePackageError as exc:
        raise HubError(f"bad source package: {exc}") from None
    except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        raise HubError(f"bad source package {dsc_path.name}: a malformed field ({type(exc).__name__}: {exc})") \
            from None
    if not PKG_RE.match(pkg.source):
        raise HubError(f"bad source package {dsc_path.name}: Source {pkg.source!r} is not a Debian package name")
    if not VERSION_RE.match(pkg.version):
        raise HubError(f"bad source package {dsc_path.name}: Version {pkg.version!r} is not a Debian version")
    if not _has_field(dsc_path, "Files"):
        raise HubError(f"bad source package {dsc_path.name}: no Files field")
    return pkg


def load(dsc_path: Path) -> dsc.SourcePackage:
    """Parse and verify a .dsc and its files (beside it); HubError 400 naming what is wrong."""
    pkg = parse(dsc_path)
    try:
        dsc.verify(pkg)
    except dsc.SourcePackageError as exc:
        raise HubError(f"bad source package: {exc}") from None
    except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        raise HubError(f"bad source package {dsc_path.name}: a malformed field ({type(exc).__name__}: {exc})") \
            from None
    return pkg


def _has_field(path: Path, name: str) -> bool:
    return any(line.startswith(f"{name}:") for line in path.read_text(errors="replace").split("\n"))


class Fetcher:
    """Downloads .dsc URLs in a bounded pool of its own (see the module's docstring)."""

    def __init__(self, settings: HubSettings) -> None:
        self.settings = settings
        self.pool = ThreadPoolExecutor(max_workers=max(1, settings.source_fetch_workers),
                                       thread_name_prefix="source-fetch")
        self._busy = 0
        self._lock = threading.Lock()

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    async def fetch(self, url: str, allowed: frozenset[str], dest: Path,
                    origins: list[ExternalOrigin]) -> tuple[dsc.SourcePackage, Verification]:
        """Fetch, authenticate and verify ``url`` into ``dest``; the caller awaits it while no request thread is
        held. ``origins``: the target's external repositories (where the .dsc may be vouched for)."""
        check_allowed(url, allowed)  # before anything is queued or fetched
        with self._lock:
            if self._busy >= self.settings.source_fetch_workers + self.settings.source_fetch_queue:
                raise HubError(f"{self._busy} source fetches are running or waiting; try again later", 503)
            self._busy += 1
        future = self.pool.submit(self.fetch_sync, url, allowed, dest, origins)

        def release(_: object) -> None:
            with self._lock:
                self._busy -= 1

        future.add_done_callback(release)  # also when the client went away: the fetch ends by its deadline
        return await asyncio.wrap_future(future)

    def fetch_sync(self, url: str, allowed: frozenset[str], dest: Path,
                   origins: list[ExternalOrigin]) -> tuple[dsc.SourcePackage, Verification]:
        deadline = time.monotonic() + self.settings.source_timeout
        budget = self.settings.source_max_bytes
        dsc_name = dsc.safe_name(Path(urlsplit(url).path).name, "a .dsc URL's file name") \
            if Path(urlsplit(url).path).name.endswith(".dsc") else ""
        if not dsc_name:
            raise HubError(f"source URL {url} does not name a .dsc file")
        dest.mkdir(parents=True, exist_ok=True)
        with httpx.Client(follow_redirects=False, headers={"Accept-Encoding": "identity"}) as client:
            budget -= self._get(client, url, dest / dsc_name, allowed, deadline, min(MAX_DSC_BYTES, budget))
            pkg = parse(dest / dsc_name)
            verification = self.authenticate(url, dest / dsc_name, allowed, origins, deadline)  # before its files
            for f in pkg.files:
                if f.size > budget:
                    raise HubError(f"{dsc_name}: its files need more than the hub's limit of "
                                   f"{_size(self.settings.source_max_bytes)} for one source package", 413)
                budget -= self._get(client, urljoin(url, f.name), dest / f.name, allowed, deadline, f.size)
        return load(dest / dsc_name), verification

    def authenticate(self, url: str, dsc_path: Path, allowed: frozenset[str], origins: list[ExternalOrigin],
                     deadline: float) -> Verification:
        """How the .dsc at ``url`` is vouched for; SourceUnverified (422) when it is not (see the module)."""
        if not self.settings.verify_source:
            log.warning("source %s NOT VERIFIED: the hub runs with --no-verify-source", url)
            return Verification(False, "none", f"not verified: the hub runs with --no-verify-source ({url})")

        def fenced(request: httpx.Request) -> None:  # every request and redirect of the index lookups
            check_allowed(str(request.url), allowed, f"{url}: looking up the mirror's index")
            if time.monotonic() > deadline:
                raise self._too_slow(url)

        with tempfile.TemporaryDirectory(prefix="source-keys-") as keydir:
            keyrings: list[Path] = []
            for i, o in enumerate(origins):
                if o.key:
                    keyrings.append(Path(keydir) / f"repo-{i}.asc")
                    keyrings[-1].write_text(o.key)
                elif DEBIAN_ARCHIVE_KEYRING not in keyrings:
                    keyrings.append(DEBIAN_ARCHIVE_KEYRING)
            trust = SourceTrust(
                mirrors=list(dict.fromkeys(o.url.rstrip("/") for o in origins)),
                suites=suites_to_try(o.suite for o in origins),
                components=list(dict.fromkeys(c for o in origins for c in o.components)) or ["main"],
                archive_keyrings=keyrings,
                source_keyrings=[Path(k) for k in self.settings.source_keyrings],
                cache_dir=self.settings.data / "cache",
                timeout=30.0,
                max_index_bytes=min(self.settings.source_max_bytes, MAX_INDEX_BYTES),
            )
            with httpx.Client(timeout=httpx.Timeout(30.0, connect=10.0), follow_redirects=True,
                              max_redirects=MAX_REDIRECTS, event_hooks={"request": [fenced]}) as client:
                try:
                    v = authenticate_dsc(url, dsc_path, trust, lambda m: log.info("%s", m), client=client,
                                         advice=ADVICE)
                except SourceAuthError as exc:
                    msg = str(exc)
                    raise SourceUnverified(msg if ADVICE in msg else f"{msg}. {ADVICE}") from None
        log.info("source %s authenticated: %s", url, v.how)
        return v

    def _get(self, client: httpx.Client, url: str, dest: Path, allowed: frozenset[str], deadline: float,
             cap: int) -> int:
        """GET ``url`` into ``dest``: redirects only to allowed hosts, at most ``cap`` bytes, by ``deadline``."""
        first = url
        for _ in range(MAX_REDIRECTS + 1):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._too_slow(first)
            try:
                timeout = httpx.Timeout(min(30.0, remaining), connect=min(10.0, remaining))
                request = client.build_request("GET", url, timeout=timeout)
                resp = client.send(request, stream=True)
            except httpx.TimeoutException:
                raise self._too_slow(first) from None
            except httpx.HTTPError as exc:
                raise HubError(f"cannot fetch {url}: {exc}", 502) from None
            try:
                if resp.status_code in (301, 302, 303, 307, 308):
                    target = urljoin(url, resp.headers.get("location", ""))
                    check_allowed(target, allowed, f"{url} redirects to")
                    url = target
                    continue
                if resp.status_code != 200:
                    hint = (" (the Debian mirror serves source files only for versions bookworm also has)"
                            if resp.status_code == 404 and "deb.debian.org" in url else "")
                    raise HubError(f"cannot fetch {url}: HTTP {resp.status_code}{hint}", 502)
                length = resp.headers.get("content-length", "")
                if length.isdigit() and int(length) > cap:
                    raise HubError(f"{url} is {length} bytes, more than the {cap} allowed for it", 413)
                return self._save(resp, url, dest, deadline, cap)
            finally:
                resp.close()
        raise HubError(f"{first}: more than {MAX_REDIRECTS} redirects", 502)

    def _save(self, resp: httpx.Response, url: str, dest: Path, deadline: float, cap: int) -> int:
        size = 0
        tmp = dest.with_name(f".{dest.name}.part")
        try:
            with tmp.open("wb") as out:
                for chunk in resp.iter_raw():  # as it arrives: a slow drip meets the deadline check
                    size += len(chunk)
                    if size > cap:
                        raise HubError(f"{url} sends more than the {cap} bytes allowed for it", 413)
                    if time.monotonic() > deadline:
                        raise self._too_slow(url)
                    out.write(chunk)
        except httpx.TimeoutException:
            raise self._too_slow(url) from None
        except httpx.HTTPError as exc:
            raise HubError(f"cannot fetch {url}: {exc}", 502) from None
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        tmp.rename(dest)
        return size

    def _too_slow(self, url: str) -> HubError:
        return HubError(f"fetching the source package of {url} took longer than the hub's limit of "
                        f"{self.settings.source_timeout:g} s", 504)
