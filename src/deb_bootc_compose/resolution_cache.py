"""Skip apt entirely when no source changed: the previous resolution is reused.

An apt source is fully described by its signed ``InRelease`` file (it names every index by its SHA-256), so
when every source's InRelease is byte-identical to the one the last resolution used, and the manifest, the
keys it names and the tool version are unchanged, apt would resolve exactly the same package set again.
:func:`fetch_releases` fetches all InRelease files in parallel with conditional GETs (``If-None-Match`` /
``If-Modified-Since``: an unchanged file costs one round trip and no body), and :class:`ResolutionCache`
keeps, per input key, the InRelease fingerprints and the lockfile they gave, in
``TARGET/.state/resolutions/<key>.json``.

Anything unusual (a source without InRelease, a network error, an InRelease past its Valid-Until, a record
that does not parse) means "not reusable": apt runs as usual and reports the problem in its own words.
A resolution is only recorded when the InRelease files apt itself downloaded are the ones fetched here
(so a mirror that changed during the compose leads to a re-resolution next time, never to a stale reuse).
"""

from __future__ import annotations

import hashlib
import json
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx

from deb_bootc_compose import __version__
from deb_bootc_compose.lockfile import Lockfile
from deb_bootc_compose.manifest import Manifest
from debarchive.digest import sha256_file

RECORD_VERSION = 1
FETCH_TIMEOUT = 10.0


@dataclass(frozen=True)
class ReleaseState:
    """One source's InRelease as fetched: its SHA-256 and the validators for the next conditional GET."""

    url: str
    sha256: str
    etag: str | None = None
    last_modified: str | None = None
    valid_until: str | None = None  # the Valid-Until field, when the file has one


class ReleaseUnavailable(Exception):
    """An InRelease could not be fetched or read; the caller falls back to apt."""


def release_urls(manifest: Manifest) -> list[str]:
    """The InRelease URL of every source, in manifest order."""
    return [f"{s.repo_url()}/dists/{s.repo_suite(manifest.suite)}/InRelease" for s in manifest.sources]


def _valid_until(data: bytes) -> str | None:
    m = re.search(rb"^Valid-Until: *(.+?) *$", data, re.M)
    return m.group(1).decode("ascii", "replace") if m else None


def _fetch_one(client: httpx.Client, url: str, previous: ReleaseState | None) -> ReleaseState:
    parsed = urlparse(url)
    if parsed.scheme == "file":
        try:
            data = Path(parsed.path).read_bytes()
        except OSError as exc:
            raise ReleaseUnavailable(f"{url}: {exc}") from exc
        return ReleaseState(url, hashlib.sha256(data).hexdigest(), valid_until=_valid_until(data))
    headers = {}
    if previous is not None and previous.url == url:
        if previous.etag:
            headers["If-None-Match"] = previous.etag
        if previous.last_modified:
            headers["If-Modified-Since"] = previous.last_modified
    try:
        resp = client.get(url, headers=headers)
    except httpx.HTTPError as exc:
        raise ReleaseUnavailable(f"{url}: {exc}") from exc
    if resp.status_code == 304 and previous is not None:
        return previous
    if resp.status_code != 200:
        raise ReleaseUnavailable(f"{url}: HTTP {resp.status_code}")
    return ReleaseState(
        url,
        hashlib.sha256(resp.content).hexdigest(),
        etag=resp.headers.get("etag"),
        last_modified=resp.headers.get("last-modified"),
        valid_until=_valid_until(resp.content),
    )


def fetch_releases(
    urls: list[str], previous: dict[str, ReleaseState] | None = None, *, timeout: float = FETCH_TIMEOUT
) -> dict[str, ReleaseState]:
    """Fetch every InRelease in parallel (conditionally when ``previous`` has validators for it)."""
    previous = previous or {}
    with httpx.Client(timeout=httpx.Timeout(timeout, connect=5), follow_redirects=True) as client, \
            ThreadPoolExecutor(max(1, min(8, len(urls)))) as pool:
        futures = {url: pool.submit(_fetch_one, client, url, previous.get(url)) for url in urls}
        return {url: f.result() for url, f in futures.items()}


def _expired(state: ReleaseState, now: datetime) -> bool:
    if not state.valid_until:
        return False
    try:
        until = parsedate_to_datetime(state.valid_until)
    except (TypeError, ValueError):
        return True  # apt would refuse an unreadable date too: let it say so
    if until.tzinfo is None:
        until = until.replace(tzinfo=UTC)
    return until <= now


def _key_material(manifest: Manifest, manifest_dir: Path) -> bytes:
    """The manifest, the content of every local key file it names, and the tool version."""
    h = hashlib.sha256()
    for part in (manifest.canonical_json(), __version__):
        h.update(part.encode())
        h.update(b"\0")
    for src in manifest.sources:
        keys = [src.key, src.orchestrator.key if src.orchestrator else None]
        for spec in keys:
            if not spec or re.match(r"^https?://", spec):
                continue
            path = Path(spec) if Path(spec).is_absolute() else manifest_dir / spec
            try:
                h.update(path.read_bytes())
            except OSError:
                h.update(b"missing:" + str(path).encode())
            h.update(b"\0")
    return h.digest()


class ResolutionCache:
    """The last resolution of one manifest (by content) in one target directory, and what it depended on."""

    def __init__(self, state_dir: Path, manifest: Manifest, manifest_dir: Path, extra: str = "") -> None:
        """``extra``: further inputs of the resolution (the hash of the deb-bootc client's source)."""
        self.manifest = manifest
        self.key = hashlib.sha256(_key_material(manifest, manifest_dir) + extra.encode()).hexdigest()
        self.path = state_dir / "resolutions" / f"{self.key}.json"
        self.urls = release_urls(manifest)

    def _load(self) -> dict[str, Any] | None:
        try:
            rec: dict[str, Any] = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        if rec.get("record_version") != RECORD_VERSION or rec.get("key") != self.key:
            return None
        return rec

    def previous_releases(self) -> dict[str, ReleaseState]:
        rec = self._load()
        if rec is None:
            return {}
        try:
            return {r["url"]: ReleaseState(**r) for r in rec["releases"]}
        except (KeyError, TypeError):
            return {}

    def check(self) -> tuple[dict[str, ReleaseState] | None, str]:
        """Fetch the sources' InRelease files now. Returns (their states or None, why not when None)."""
        try:
            return fetch_releases(self.urls, self.previous_releases()), ""
        except ReleaseUnavailable as exc:
            return None, str(exc)

    def reusable(self, releases: dict[str, ReleaseState] | None) -> tuple[Lockfile | None, str]:
        """The recorded lockfile when every InRelease is unchanged; else (None, the reason)."""
        if releases is None:
            return None, "the sources' InRelease files could not be checked"
        rec = self._load()
        if rec is None:
            return None, "no earlier resolution of this manifest in this target directory"
        now = datetime.now(UTC)
        recorded = {r.get("url"): r.get("sha256") for r in rec.get("releases", [])}
        for url in self.urls:
            state = releases[url]
            if recorded.get(url) != state.sha256:
                return None, f"{url} changed since the last resolution"
            if _expired(state, now) and self._checks_valid_until(url):
                return None, f"{url} is past its Valid-Until ({state.valid_until})"
        try:
            lock = Lockfile.model_validate(rec["lockfile"])
        except (KeyError, ValueError):
            return None, f"{self.path} does not hold a valid lockfile"
        return lock, f"every InRelease is unchanged since {rec.get('compose_id', 'the last resolution')}"

    def _checks_valid_until(self, url: str) -> bool:
        for src, u in zip(self.manifest.sources, self.urls, strict=True):
            if u == url:
                return bool(src.check_valid_until)
        return True

    def record(self, releases: dict[str, ReleaseState], lock: Lockfile, apt_lists: list[Path],
               compose_id: str) -> str | None:
        """Remember this resolution; returns why it was not recorded (None when it was)."""
        apt_saw = set()
        for lists in apt_lists:
            for p in lists.glob("*InRelease"):
                apt_saw.add(sha256_file(p))
        stale = [url for url in self.urls if releases[url].sha256 not in apt_saw]
        if stale:
            return f"{', '.join(stale)} changed while apt was reading it"
        rec = {
            "record_version": RECORD_VERSION,
            "key": self.key,
            "compose_id": compose_id,
            "releases": [asdict(releases[url]) for url in self.urls],
            "lockfile": lock.model_dump(mode="json"),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(rec, separators=(",", ":")))
        tmp.replace(self.path)
        return None
