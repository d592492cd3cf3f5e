"""Package lists and what an update changes: the commit metadata key, dpkg's status file, version order."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

# The commit metadata key deb-bootc-compose writes: a JSON object {package name: version} as a string.
PACKAGES_KEY = "deb-bootc.packages"
NAME = re.compile(r"^[a-z0-9][a-z0-9+.\-]*(:[a-z0-9\-]+)?$")
VERSION = re.compile(r"^[A-Za-z0-9.+~:\-]+$")


def from_json(text: str) -> dict[str, str]:
    """The package list of a commit's ``deb-bootc.packages`` metadata; ValueError for anything else."""
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("the package list is not a JSON object")
    for name, version in data.items():
        if not isinstance(version, str) or not NAME.match(name) or not VERSION.match(version):
            raise ValueError(f"bad package entry {name!r}: {version!r}")
    return dict(data)


def from_dpkg_status(text: str) -> dict[str, str]:
    """The installed packages of a dpkg status file (``usr/lib/sysimage/dpkg/status`` in an image)."""
    out: dict[str, str] = {}
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line[:1] in (" ", "\t") or ":" not in line:
                continue
            key, _, value = line.partition(":")
            fields[key.strip().lower()] = value.strip()
        if fields.get("package") and fields.get("status", "").endswith(" installed") and "version" in fields:
            out[fields["package"]] = fields["version"]
    return out


def _order(c: str) -> int:
    if c == "~":
        return -1
    if c.isdigit():
        return 0
    if c.isalpha():
        return ord(c)
    return ord(c) + 256


def _compare_part(a: str, b: str) -> int:
    """dpkg's verrevcmp: alternating non-digit and digit runs; '~' sorts before everything, even the end."""
    i = j = 0
    while i < len(a) or j < len(b):
        first_diff = 0
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac = _order(a[i]) if i < len(a) else 0
            bc = _order(b[j]) if j < len(b) else 0
            if ac != bc:
                return ac - bc
            i += 1
            j += 1
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        while i < len(a) and a[i].isdigit() and j < len(b) and b[j].isdigit():
            if not first_diff:
                first_diff = ord(a[i]) - ord(b[j])
            i += 1
            j += 1
        if i < len(a) and a[i].isdigit():
            return 1
        if j < len(b) and b[j].isdigit():
            return -1
        if first_diff:
            return first_diff
    return 0


def _split(v: str) -> tuple[int, str, str]:
    epoch, sep, rest = v.partition(":")
    if not sep:
        epoch, rest = "0", v
    upstream, sep, revision = rest.rpartition("-")
    if not sep:
        upstream, revision = rest, ""
    return int(epoch or 0), upstream, revision


def compare_versions(a: str, b: str) -> int:
    """<0, 0, >0 as Debian version ``a`` sorts before, equal to or after ``b`` (dpkg --compare-versions)."""
    ea, ua, ra = _split(a)
    eb, ub, rb = _split(b)
    if ea != eb:
        return -1 if ea < eb else 1
    return _compare_part(ua, ub) or _compare_part(ra, rb)


@dataclass
class Changes:
    added: dict[str, str] = field(default_factory=dict)
    removed: dict[str, str] = field(default_factory=dict)
    upgraded: dict[str, tuple[str, str]] = field(default_factory=dict)
    downgraded: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.upgraded or self.downgraded)

    def to_json(self) -> dict[str, object]:
        return {
            "added": [{"name": n, "version": v} for n, v in sorted(self.added.items())],
            "removed": [{"name": n, "version": v} for n, v in sorted(self.removed.items())],
            "upgraded": [{"name": n, "from": a, "to": b} for n, (a, b) in sorted(self.upgraded.items())],
            "downgraded": [{"name": n, "from": a, "to": b} for n, (a, b) in sorted(self.downgraded.items())],
        }

    def lines(self) -> list[str]:
        out = [f"  upgraded:   {n} {a} -> {b}" for n, (a, b) in sorted(self.upgraded.items())]
        out += [f"  downgraded: {n} {a} -> {b}" for n, (a, b) in sorted(self.downgraded.items())]
        out += [f"  added:      {n} {v}" for n, v in sorted(self.added.items())]
        out += [f"  removed:    {n} {v}" for n, v in sorted(self.removed.items())]
        return out

    def summary(self) -> str:
        parts = [f"{len(self.upgraded)} upgraded", f"{len(self.added)} added", f"{len(self.removed)} removed"]
        if self.downgraded:
            parts.append(f"{len(self.downgraded)} downgraded")
        return ", ".join(parts)


def diff(old: dict[str, str], new: dict[str, str]) -> Changes:
    ch = Changes()
    for name, version in new.items():
        if name not in old:
            ch.added[name] = version
        elif old[name] != version:
            target = ch.upgraded if compare_versions(version, old[name]) > 0 else ch.downgraded
            target[name] = (old[name], version)
    for name, version in old.items():
        if name not in new:
            ch.removed[name] = version
    return ch
