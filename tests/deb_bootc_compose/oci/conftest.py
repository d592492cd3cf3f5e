"""A real, small Debian tree for the OCI writer's integration tests.

``mmdebstrap --variant=minbase trixie`` with a fixed SOURCE_DATE_EPOCH, cached as a tarball under the
``test_cache`` fixture; unpacked once per session, with its dpkg database moved to
``usr/lib/sysimage/dpkg`` (and ``var/lib/dpkg`` a symlink to it) as ostree-prepare does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from debsandbox.commands import run
from testcache import locked, partial_name

SOURCE_DATE_EPOCH = 1735689600  # 2025-01-01


def _minbase_tarball(test_cache: Path, mirror: str) -> Path:
    cache = test_cache / "compose-oci"
    cache.mkdir(parents=True, exist_ok=True)
    tarball = cache / f"trixie-minbase-{SOURCE_DATE_EPOCH}.tar"
    with locked(cache / f".{tarball.name}.lock"):
        if not tarball.exists():
            tmp = partial_name(tarball).with_suffix(".tar")  # mmdebstrap picks the format by the suffix
            run(
                ["mmdebstrap", "--variant=minbase", "--mode=root", "--quiet", "trixie", str(tmp), mirror],
                extra_env={"SOURCE_DATE_EPOCH": str(SOURCE_DATE_EPOCH)},
                log=cache / "mmdebstrap.log",
                timeout=900,
            )
            os.replace(tmp, tarball)
    return tarball


def prepare_container_tree(tarball: Path, dest: Path) -> Path:
    dest.mkdir(parents=True)
    subprocess.run(
        ["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-xpf", str(tarball), "-C", str(dest)],
        check=True,
    )
    for runtime in ("dev", "proc", "sys", "run", "tmp"):
        top = dest / runtime
        if top.is_dir():
            for child in top.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
    sysimage = dest / "usr/lib/sysimage"
    sysimage.mkdir(parents=True, exist_ok=True)
    os.replace(dest / "var/lib/dpkg", sysimage / "dpkg")
    os.symlink("../../usr/lib/sysimage/dpkg", dest / "var/lib/dpkg")
    return dest


@pytest.fixture(scope="session")
def minbase_tarball(test_cache: Path, mirror: str) -> Path:
    return _minbase_tarball(test_cache, mirror)


@pytest.fixture(scope="session")
def minbase_tree(minbase_tarball: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The prepared tree; tests must not modify it (copy it with ``cp -a`` first)."""
    return prepare_container_tree(minbase_tarball, tmp_path_factory.mktemp("minbase") / "tree")
