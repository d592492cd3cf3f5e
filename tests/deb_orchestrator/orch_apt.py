"""Clean Debian chroots (mmdebstrap --variant=apt, cached tarball shared with the debarchive tests) to check
tag repositories with the real apt: trixie verifies with sqv, bookworm with gpgv."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from debsandbox.bwrap import bwrap_argv
from debsandbox.commands import run
from debsandbox.locks import flock


def chroot_tarball(cache: Path, suite: str, mirror: str) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    tarball = cache / f"debarchive-{suite}-apt.tar"  # same cache entry as tests/debarchive
    with flock(cache / f".debarchive-{suite}.lock", keep_file=True):
        if not tarball.exists():
            partial = tarball.with_suffix(".partial.tar")
            partial.unlink(missing_ok=True)
            run(["mmdebstrap", "--variant=apt", "--mode=root", "--format=tar", suite, str(partial), mirror],
                log=cache / f"debarchive-{suite}-mmdebstrap.log", timeout=1200)
            os.replace(partial, tarball)
    return tarball


def apt_install_from(tarball: Path, root: Path, sources_line: str, key: str, package: str) -> str:
    """Unpack a clean chroot, point apt at one repo only, install ``package``; returns dpkg's version of it."""
    root.mkdir(parents=True)
    subprocess.run(["tar", "-xf", str(tarball), "-C", str(root)], check=True)
    (root / "etc/apt/sources.list").write_text(sources_line + "\n")
    for d in (root / "etc/apt/sources.list.d",):
        for f in d.glob("*"):
            f.unlink()
    (root / "etc/apt/keyrings").mkdir(parents=True, exist_ok=True)
    (root / "etc/apt/keyrings/hub.asc").write_text(key)

    def inside(*argv: str) -> str:
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C.UTF-8"}
        cmd = bwrap_argv(argv, root=root, network=True, user_namespace=False, all_caps=True, env=env)
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if res.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
        return res.stdout

    inside("apt-get", "update", "-o", "APT::Update::Error-Mode=any")
    inside("apt-get", "install", "-y", "--no-install-recommends", package)
    return inside("dpkg-query", "-W", "-f", "${Version}", package)
