"""Compose IDs in Pungi's shape: ``{name}-{version}-{YYYYMMDD}{""|.n|.t}.{respin}``.

The respin counts composes of the same name, version, date and type already in the target directory
(starting at 0), so two composes on one day never share a directory.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

TYPE_SUFFIX = {"production": "", "nightly": ".n", "test": ".t"}


def date_string(now: dt.datetime | None = None) -> str:
    return (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%d")


def prefix(name: str, version: str, compose_type: str, date: str) -> str:
    if compose_type not in TYPE_SUFFIX:
        raise ValueError(f"compose type {compose_type!r} is not one of {', '.join(TYPE_SUFFIX)}")
    return f"{name}-{version}-{date}{TYPE_SUFFIX[compose_type]}"


def next_respin(target: Path, name: str, version: str, compose_type: str, date: str) -> int:
    pre = prefix(name, version, compose_type, date)
    pattern = re.compile(re.escape(pre) + r"\.(\d+)$")
    respins = [int(m.group(1)) for p in (target.iterdir() if target.is_dir() else []) if (m := pattern.match(p.name))]
    return max(respins) + 1 if respins else 0


def make(target: Path, name: str, version: str, compose_type: str, date: str | None = None) -> str:
    d = date or date_string()
    return f"{prefix(name, version, compose_type, d)}.{next_respin(target, name, version, compose_type, d)}"


def parse(compose_id: str) -> dict[str, str | int]:
    """Split a compose ID into name, version, date, type and respin (raises ValueError when malformed)."""
    m = re.match(r"^(?P<name>.+)-(?P<version>[^-]+)-(?P<date>\d{8})(?P<suffix>\.n|\.t)?\.(?P<respin>\d+)$", compose_id)
    if not m:
        raise ValueError(f"{compose_id!r} is not a compose ID (NAME-VERSION-YYYYMMDD[.n|.t].RESPIN)")
    suffix = m.group("suffix") or ""
    ctype = {v: k for k, v in TYPE_SUFFIX.items()}[suffix]
    return {"name": m["name"], "version": m["version"], "date": m["date"], "type": ctype, "respin": int(m["respin"])}
