"""The image's identity, ``/usr/lib/os-release`` (os-release(5)): the manifest's ``os_release:`` keys, checked,
and the file rendered with them over the one Debian's base-files ships.

A manifest (or a variant) names only what it changes::

    os_release:
      ID: particle-os
      NAME: Particle-OS
      VERSION_ID: "1"
      PRETTY_NAME: Particle-OS 1 (on Debian 13)

Debian's other lines (``HOME_URL``, ``VERSION_CODENAME``…) are kept as they are. An image whose ``ID`` is not
``debian`` still is Debian underneath: its ``ID_LIKE`` gets ``debian`` (added when the manifest names none,
appended to the manifest's list otherwise), so tools that ask "is this Debian-like?" keep working.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

KEY = re.compile(r"^[A-Z][A-Z0-9_]*$")
MAX_KEYS = 64
MAX_KEY_LENGTH = 64
MAX_VALUE_LENGTH = 256
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# os-release(5): identifiers an operating system is recognised by (lower case, no spaces)
IDENTIFIER = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
IDENTIFIER_KEYS = ("ID", "VARIANT_ID", "VERSION_ID", "VERSION_CODENAME", "BUILD_ID", "IMAGE_ID", "IMAGE_VERSION")
# the keys docs/compose.md names; any other KEY is accepted too (os-release(5) allows vendor keys)
DOCUMENTED = ("ID", "ID_LIKE", "NAME", "PRETTY_NAME", "VERSION", "VERSION_ID", "VERSION_CODENAME", "VARIANT",
              "VARIANT_ID", "BUILD_ID", "IMAGE_ID", "IMAGE_VERSION", "HOME_URL", "SUPPORT_URL", "BUG_REPORT_URL",
              "DOCUMENTATION_URL", "LOGO", "ANSI_COLOR", "CPE_NAME")
PLAIN = re.compile(r"^[A-Za-z0-9._-]+$")


class OsReleaseProblem(ValueError):
    """One bad entry of an ``os_release`` mapping; ``key`` is the entry's key (None: the mapping itself)."""

    def __init__(self, key: str | None, message: str) -> None:
        self.key = key
        super().__init__(message)


def _value(key: str, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        kind = "a number with a fraction" if isinstance(value, float) else type(value).__name__
        raise OsReleaseProblem(key, f"{key} must be a string, not {kind} (quote it: {key}: \"...\")")
    text = str(value)
    if not text:
        raise OsReleaseProblem(key, f"{key} must not be empty (leave the key out to keep Debian's value)")
    if len(text) > MAX_VALUE_LENGTH:
        raise OsReleaseProblem(key, f"{key} is {len(text)} characters long; at most {MAX_VALUE_LENGTH}")
    if CONTROL.search(text):
        raise OsReleaseProblem(key, f"{key} {text!r} must not hold newlines or control characters")
    if key in IDENTIFIER_KEYS and not IDENTIFIER.match(text):
        raise OsReleaseProblem(key, f"{key} {text!r} must be lower case letters, digits, '.', '_' and '-' "
                                    "(os-release(5); a display name goes into NAME or VARIANT)")
    if key == "ID_LIKE" and not all(IDENTIFIER.match(w) for w in text.split(" ")):
        raise OsReleaseProblem(key, f"ID_LIKE {text!r} must be IDs separated by single spaces, e.g. 'debian'")
    return text


def check(data: Any) -> dict[str, str]:
    """The validated ``os_release`` mapping (numbers become strings); :class:`OsReleaseProblem` otherwise."""
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise OsReleaseProblem(None, "os_release must be a mapping of os-release keys to values, e.g. "
                                     "{ID: particle-os, NAME: Particle-OS}")
    if len(data) > MAX_KEYS:
        raise OsReleaseProblem(None, f"os_release has {len(data)} keys; at most {MAX_KEYS}")
    out: dict[str, str] = {}
    for key, value in data.items():
        if not isinstance(key, str) or len(key) > MAX_KEY_LENGTH or not KEY.match(key):
            raise OsReleaseProblem(str(key), f"{key!r} is not an os-release key: upper case letters, digits and "
                                             f"'_', starting with a letter, at most {MAX_KEY_LENGTH} (e.g. "
                                             f"{', '.join(DOCUMENTED[:6])})")
        out[key] = _value(key, value)
    return out


def merge(base: Mapping[str, str], over: Mapping[str, str]) -> dict[str, str]:
    """``over``'s keys over ``base``'s, key by key (``base``'s order first, then ``over``'s new keys)."""
    return {**base, **over}


def unquote(raw: str) -> str:
    """A value as os-release(5) writes it (shell quoting: '…', "…" with backslash escapes, or bare)."""
    out: list[str] = []
    quote: str | None = None
    i = 0
    while i < len(raw):
        c = raw[i]
        if quote is None and c in "'\"":
            quote = c
        elif c == quote:
            quote = None
        elif c == "\\" and quote != "'" and i + 1 < len(raw):
            i += 1
            out.append(raw[i])
        else:
            out.append(c)
        i += 1
    return "".join(out)


def quote(value: str) -> str:
    if PLAIN.match(value):
        return value
    escaped = re.sub(r'(["\\$`])', r"\\\1", value)
    return f'"{escaped}"'


def parse(text: str) -> dict[str, str]:
    """The keys of an os-release file (comments, blank and malformed lines skipped)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, raw = line.strip().partition("=")
        if sep and KEY.match(key):
            out[key] = unquote(raw)
    return out


def with_id_like(keys: Mapping[str, str], debian: Mapping[str, str]) -> dict[str, str]:
    """``keys`` with ``ID_LIKE`` holding ``debian`` when the effective ID (``keys``' or Debian's) is not debian."""
    out = dict(keys)
    if out.get("ID", debian.get("ID", "debian")) == "debian":
        return out
    like = out.get("ID_LIKE", debian.get("ID_LIKE", ""))
    if "debian" not in like.split():
        out["ID_LIKE"] = f"{like} debian".strip()
    return out


def render(debian: str, keys: Mapping[str, str]) -> str:
    """Debian's os-release text with ``keys`` over it: a key Debian has is replaced on its own line, the others
    are appended in ``keys``' order, every other line is kept byte for byte."""
    wanted = with_id_like(keys, parse(debian))
    lines: list[str] = []
    done: set[str] = set()
    for line in debian.splitlines():
        key, sep, _ = line.strip().partition("=")
        if sep and key in wanted:
            if key not in done:
                lines.append(f"{key}={quote(wanted[key])}")
                done.add(key)
            continue
        lines.append(line)
    lines += [f"{k}={quote(v)}" for k, v in wanted.items() if k not in done]
    return "\n".join(lines) + "\n"
