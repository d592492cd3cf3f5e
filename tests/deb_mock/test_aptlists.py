"""The apt lists snapshots shared by builds whose root cache's lists are stale (deb_mock.chroot.aptlists):
made once, reused while fresh, replaced when old, and an old one removed only when no build uses it. The
refresh itself (apt-get update in a sandbox) is exercised by the integration test in test_build_integration."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from deb_mock.chroot import aptlists
from deb_mock.chroot.paths import CachePaths
from deb_mock.chroot.rootcache import RootCache
from deb_mock.errors import InfraError


def _cache(tmp_path: Path) -> tuple[RootCache, CachePaths]:
    gen = tmp_path / "root-cache" / "cfg-0123456789abcdef" / "gen-1"
    (gen / "root").mkdir(parents=True)
    cache = RootCache("cfg", "0123456789abcdef", "gen-1", gen / "root", time.time() - 86400, 0)
    return cache, CachePaths(tmp_path / "cache")


def test_a_snapshot_is_made_once_and_shared_while_fresh(tmp_path: Path) -> None:
    cache, paths = _cache(tmp_path)
    made: list[Path] = []

    def refresh(into: Path) -> None:
        assert into.is_dir() and not any(into.iterdir())
        (into / "Packages").write_text(f"refresh {len(made)}\n")
        made.append(into)

    with aptlists.fresh(cache, paths, 3600, refresh) as first:
        assert (first.path / "Packages").read_text() == "refresh 0\n"
        assert first.path.parent == cache.root.parent / "lists"
    with aptlists.fresh(cache, paths, 3600, refresh) as second:
        assert second == first
    assert len(made) == 1
    assert [p.name for p in (cache.root.parent / "lists").iterdir()] == [first.name]  # no staging left


def test_an_old_snapshot_is_replaced_and_removed_once_unused(tmp_path: Path) -> None:
    cache, paths = _cache(tmp_path)
    n = 0

    def refresh(into: Path) -> None:
        nonlocal n
        n += 1
        (into / "Packages").write_text(f"{n}\n")

    with aptlists.fresh(cache, paths, 3600, refresh) as old:
        pass
    time.sleep(0.01)
    with aptlists.fresh(cache, paths, 3600, refresh) as held:  # another build still uses this one
        assert held == old
        with aptlists.fresh(cache, paths, 0.001, refresh) as new:  # too old for this build: a new one
            assert new != old and (new.path / "Packages").read_text() == "2\n"
        assert old.path.is_dir()  # in use: kept
    with aptlists.fresh(cache, paths, 3600, refresh) as newest:
        assert newest == new
    assert not old.path.exists()  # nobody uses it any more: removed after the last build
    assert n == 2


def test_a_failed_refresh_leaves_nothing(tmp_path: Path) -> None:
    cache, paths = _cache(tmp_path)

    def refresh(into: Path) -> None:
        (into / "partial").mkdir()
        raise InfraError("apt-get update failed")

    with pytest.raises(InfraError), aptlists.fresh(cache, paths, 3600, refresh):
        pass
    assert list((cache.root.parent / "lists").iterdir()) == []
