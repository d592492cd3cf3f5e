"""``image_sources:``: what the image's own ``/etc/apt/sources.list.d`` holds, so that ``apt-get update && apt-get
install`` works in a Containerfile ``FROM`` the image and on the machines it boots.

Without the key, the manifest's sources that can be reached from elsewhere: every plain ``url:`` source but
``file://`` URLs and loopback hosts (``localhost``, 127.0.0.0/8, ``::1``); orchestrator tag sources (a hub's URL)
never. With it, exactly the entries given (``[]``: no sources at all); an entry that apt outside the compose
host could not reach is an error naming its file, line and key. Keys go to ``/etc/apt/keyrings`` and the
stanza's ``Signed-By``; without ``key:`` Debian's archive keyring (``/usr/share/keyrings``).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from deb_bootc_compose.imagespec import StrictModel

if TYPE_CHECKING:
    from deb_bootc_compose.manifest import Manifest

SUITE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+\-]*(/[A-Za-z0-9][A-Za-z0-9._+\-]*)*$")
COMPONENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+\-]*(/[A-Za-z0-9][A-Za-z0-9._+\-]*)?$")
URL = re.compile(r"^(https?|file)://[!#-~]+$")  # printable ASCII, no space or quote: it lands in apt's files
DEBIAN_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


def local_url_reason(url: str) -> str | None:
    """Why apt away from the compose host cannot use ``url`` (None when it can)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return f"a {parts.scheme or 'relative'}: URL"
    host = (parts.hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return "a loopback host"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    return "a loopback address" if address.is_loopback or address.is_unspecified else None


class ImageSource(StrictModel):
    """One apt source of the image: ``{url, suite, components, key, trusted, check_valid_until}``."""

    url: str
    suite: str | None = None  # default: the manifest's suite
    components: list[str] = Field(default_factory=lambda: ["main"], min_length=1)
    key: str | None = None  # keyring (path relative to the manifest, or https URL); default Debian's
    trusted: bool = False
    check_valid_until: bool = True

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not URL.match(v):
            raise ValueError(f"url {v!r} must be an http:// or https:// URL without spaces, quotes or control "
                             "characters")
        why = local_url_reason(v)
        if why is not None:
            raise ValueError(f"url {v!r} is {why}: apt-get in a Containerfile or on a machine cannot reach it; "
                             "name a mirror reachable from there")
        return v.rstrip("/")

    @field_validator("suite")
    @classmethod
    def _suite(cls, v: str | None) -> str | None:
        if v is not None and (not SUITE.match(v) or ".." in v):
            raise ValueError(f"suite {v!r} is not a suite name (e.g. trixie-updates)")
        return v

    @field_validator("components")
    @classmethod
    def _components(cls, v: list[str]) -> list[str]:
        bad = [c for c in v if not COMPONENT.match(c)]
        if bad:
            raise ValueError(f"components {bad!r} are not component names (e.g. main, non-free-firmware)")
        return v


@dataclass(frozen=True)
class EffectiveSource:
    """An image source and where its keyring comes from: ``sources[index]``'s (fetched by gather) when it
    is one of the manifest's sources, else its own ``key``."""

    source: ImageSource
    from_manifest: int | None  # index into the manifest's sources


def effective(m: Manifest) -> tuple[list[EffectiveSource], list[str]]:
    """The image's sources, and the manifest sources left out of them (with the reason) when defaulted."""
    if m.image_sources is not None:
        return [EffectiveSource(s, None) for s in m.image_sources], []
    chosen, left_out = [], []
    for i, src in enumerate(m.sources):
        url = src.repo_url()
        why = "an orchestrator tag (a hub's URL)" if src.orchestrator is not None else local_url_reason(url)
        if why is not None:
            left_out.append(f"{url} ({why})")
            continue
        chosen.append(EffectiveSource(ImageSource(url=url, suite=src.repo_suite(m.suite), components=src.components,
                                                  key=src.key, trusted=src.trusted,
                                                  check_valid_until=src.check_valid_until), i))
    return chosen, left_out


def stanza(src: ImageSource, suite: str, signed_by: str | None) -> str:
    """The deb822 stanza of one source (``signed_by`` None: the source's trust as given)."""
    lines = ["Types: deb", f"URIs: {src.url}", f"Suites: {src.suite or suite}",
             f"Components: {' '.join(src.components)}"]
    if src.trusted:
        lines.append("Trusted: yes")
    elif signed_by:
        lines.append(f"Signed-By: {signed_by}")
    if not src.check_valid_until:
        lines.append("Check-Valid-Until: no")
    return "\n".join(lines) + "\n"
