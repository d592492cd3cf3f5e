"""dracut's SOURCE_DATE_EPOCH comes from the kernel's and dracut's packages, not from every package: an update
of a package the initramfs does not contain must leave it byte-identical (bench/ostree_update_bytes.py measures
the whole effect)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from types import SimpleNamespace
from typing import cast

from deb_bootc_compose.lockfile import LockedPackage
from deb_bootc_compose.paths import TargetPaths
from deb_bootc_compose.prepare.base import PrepareJob
from deb_bootc_compose.prepare.initramfs import initramfs_epoch

KVER = "6.12.117+deb13-amd64"


def deb(target: TargetPaths, name: str, built: int) -> LockedPackage:
    """A pool file with dpkg-deb's ar header (the build time is what the pool reads)."""
    sha = hashlib.sha256(name.encode()).hexdigest()
    path = target.pool_deb(sha)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = b"debian-binary   " + str(built).encode().ljust(12) + b"0     0     100644  4         `\n"
    path.write_bytes(b"!<arch>\n" + header + b"2.0\n")
    return LockedPackage(name=name, version="1", arch="amd64", sha256=sha, size=1, url="file:///x")


def job(tmp_path: Path, packages: dict[str, int]) -> PrepareJob:
    target = TargetPaths(tmp_path)
    lock = SimpleNamespace(packages=[deb(target, n, t) for n, t in packages.items()])
    return cast(PrepareJob, SimpleNamespace(vs=SimpleNamespace(lock=lock), ctx=SimpleNamespace(target=target),
                                            kver=KVER))


def test_only_the_initramfs_builders_count(tmp_path: Path) -> None:
    base = {f"linux-image-{KVER}": 1000, "dracut": 1200, "dracut-core": 1100, "systemd": 900, "hello": 500}
    assert initramfs_epoch(job(tmp_path / "a", base)) == 1200
    # a newer build of a package the initramfs does not contain (the compose's SOURCE_DATE_EPOCH moves): same
    assert initramfs_epoch(job(tmp_path / "b", {**base, "hello": 99999})) == 1200
    # a newer kernel does move it
    assert initramfs_epoch(job(tmp_path / "c", {**base, f"linux-image-{KVER}": 5000})) == 5000


def test_unknown_without_a_lock(tmp_path: Path) -> None:
    j = cast(PrepareJob, SimpleNamespace(vs=SimpleNamespace(lock=None), ctx=None, kver=KVER))
    assert initramfs_epoch(j) is None
    assert initramfs_epoch(job(tmp_path, {"hello": 5})) is None
