"""Compose IDs: {name}-{version}-{YYYYMMDD}{""|.n|.t}.{respin}, respin counting existing composes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from deb_bootc_compose import composeid


def test_types() -> None:
    d = "20260101"
    assert composeid.prefix("debian-bootc", "13", "production", d) == "debian-bootc-13-20260101"
    assert composeid.prefix("debian-bootc", "13", "nightly", d) == "debian-bootc-13-20260101.n"
    assert composeid.prefix("debian-bootc", "13", "test", d) == "debian-bootc-13-20260101.t"
    with pytest.raises(ValueError, match="not one of"):
        composeid.prefix("x", "1", "weekly", d)


def test_respin_counts_existing(tmp_path: Path) -> None:
    d = "20260101"
    assert composeid.make(tmp_path, "deb", "13", "test", d) == "deb-13-20260101.t.0"
    (tmp_path / "deb-13-20260101.t.0").mkdir()
    (tmp_path / "deb-13-20260101.t.1").mkdir()
    (tmp_path / "deb-13-20260101.n.7").mkdir()  # other type: does not count
    (tmp_path / "deb-13-20260102.t.4").mkdir()  # other day: does not count
    (tmp_path / "deb-131-20260101.t.9").mkdir()  # other version: does not count
    assert composeid.make(tmp_path, "deb", "13", "test", d) == "deb-13-20260101.t.2"
    assert composeid.make(tmp_path, "deb", "13", "nightly", d) == "deb-13-20260101.n.8"
    assert composeid.make(tmp_path, "deb", "13", "production", d) == "deb-13-20260101.0"


def test_missing_target_starts_at_zero(tmp_path: Path) -> None:
    assert composeid.make(tmp_path / "nope", "a", "1", "production", "20260101") == "a-1-20260101.0"


def test_date_is_utc_today() -> None:
    now = dt.datetime(2026, 3, 4, 23, 59, tzinfo=dt.UTC)
    assert composeid.date_string(now) == "20260304"
    assert len(composeid.date_string()) == 8


def test_parse_roundtrip() -> None:
    assert composeid.parse("debian-bootc-13-20260101.t.3") == {
        "name": "debian-bootc", "version": "13", "date": "20260101", "type": "test", "respin": 3,
    }
    assert composeid.parse("x-1.2-20260101.0")["type"] == "production"
    with pytest.raises(ValueError, match="not a compose ID"):
        composeid.parse("nonsense")
