"""Helpers of the gc tests: builds made over real HTTP with the fake builder (tagged, untagged, failed, sharing
an .orig.tar.gz), store objects aged as if days had passed, the database's view of the store, and a tag
repository checked with the real apt-get (a private configuration, never the host's) and by fetching every
file its indices name."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

import httpx
from debian.deb822 import Packages, Sources
from orch_helpers import FakeBuilder
from sqlalchemy import create_engine, text

from deb_orchestrator.client import HubClient

MIRROR = "http://deb.debian.org/debian"
DAY = 86400.0


def setup_tags(admin: HubClient) -> None:
    """Koji's usual set-up: dest inherits base (the mirror, never fetched here), build inherits dest."""
    admin.add_tag("base", external_repos=[{"url": MIRROR, "suite": "trixie", "components": ["main"]}])
    admin.add_tag("dest", parents=["base"])
    admin.add_tag("build", parents=["dest"])
    admin.add_target("t", "build", "dest")


def quilt_source(root: Path, name: str, version: str, orig: Path) -> Path:
    """A 3.0 (quilt) source of ``orig`` (name_UPSTREAM.orig.tar.gz from :func:`make_orig`, shared by every
    revision); returns the .dsc."""
    upstream = version.split("-")[0]
    work = root / f"{name}_{version}"
    work.mkdir(parents=True)
    os.link(orig, work / orig.name)
    tree = work / f"{name}-{upstream}"
    shutil.copytree(orig.parent / "orig" / tree.name, tree)  # what make_orig packed (no archive to unpack)
    (tree / "debian" / "source").mkdir(parents=True)
    (tree / "debian" / "source" / "format").write_text("3.0 (quilt)\n")
    (tree / "debian" / "control").write_text(
        f"Source: {name}\nSection: misc\nPriority: optional\nMaintainer: T <t@example.org>\n"
        f"Standards-Version: 4.6.2\n\nPackage: {name}\nArchitecture: all\nDescription: gc test\n test\n")
    (tree / "debian" / "changelog").write_text(
        f"{name} ({version}) unstable; urgency=medium\n\n  * Test.\n\n -- T <t@example.org>  "
        "Mon, 01 Jan 2024 00:00:00 +0000\n")
    (tree / "debian" / "rules").write_text("#!/usr/bin/make -f\n%:\n\tdh $@\n")
    (tree / "debian" / "rules").chmod(0o755)
    subprocess.run(["dpkg-source", "-b", tree.name], cwd=work, check=True, capture_output=True)
    return work / f"{name}_{version}.dsc"


def make_orig(root: Path, name: str, upstream: str) -> Path:
    src = root / "orig" / f"{name}-{upstream}"
    src.mkdir(parents=True)
    (src / "README").write_text(f"{name} {upstream}: the upstream source two revisions share\n" * 50)
    orig = root / f"{name}_{upstream}.orig.tar.gz"
    with tarfile.open(orig, "w:gz") as tar:
        tar.add(src, arcname=src.name)
    return orig


def build(admin: HubClient, fb: FakeBuilder, dsc: Path, exit_code: int = 0) -> str:
    """Submit and let the fake builder finish it; returns the build's SOURCE_VERSION."""
    sub = admin.submit("t", dsc)
    fb.step(exit_code)
    return sub.build.ident


def untag(admin: HubClient, ident: str, timeout: float = 60) -> None:
    """Untag a build from dest and wait until no published repository lists it any more (gc keeps a build while
    one does; dest and build, which inherits it, are published again)."""
    admin.untag_build("dest", ident)
    deadline = time.monotonic() + timeout
    while any(ident in r.builds or r.dirty for r in admin.repos()):
        assert time.monotonic() < deadline, f"{ident} still published: {admin.repos()}"
        time.sleep(0.1)


def settle(admin: HubClient, timeout: float = 60) -> None:
    """Wait until every tag repository is published and clean (so its build list is current)."""
    deadline = time.monotonic() + timeout
    while True:
        repos = admin.repos()
        if repos and all(r.state == "ready" and not r.dirty for r in repos):
            return
        assert time.monotonic() < deadline, f"repositories not settled: {repos}"
        time.sleep(0.1)


def age_store(store: Path, days: float = 2.0) -> None:
    """Make every object of the store look ``days`` old (gc keeps objects written in the last hour)."""
    then = time.time() - days * DAY
    for root, _, files in os.walk(store / "objects"):
        for name in files:
            os.utime(os.path.join(root, name), (then, then))


def objects(store: Path) -> set[str]:
    return {p.parent.name + p.name for p in (store / "objects").glob("*/*")}


def named_objects(db_url: str) -> dict[str, int]:
    """sha256 -> size of every artifact row of a build not deleted (read straight from the database)."""
    engine = create_engine(db_url)
    try:
        with engine.connect() as c:
            rows = c.execute(text("SELECT a.sha256, a.size FROM artifacts a JOIN builds b ON b.id = a.build_id "
                                  "WHERE b.state != 'deleted'")).all()
    finally:
        engine.dispose()
    return {sha: size for sha, size in rows}


def check_repo_serves(url: str, tag: str, work: Path) -> int:
    """``apt-get update`` from the repository alone (signature checked with its key), then every file its
    Packages and Sources name fetched over HTTP and checked against their SHA256. Returns the file count."""
    work.mkdir(parents=True, exist_ok=True)
    key = work / "key.asc"
    key.write_bytes(httpx.get(f"{url}/repos/{tag}/key.asc", timeout=30).content)
    for d in ("state/lists/partial", "cache/archives/partial", "empty"):
        (work / d).mkdir(parents=True, exist_ok=True)
    (work / "status").write_text("")
    (work / "sources.list").write_text(f"deb [signed-by={key}] {url}/repos/{tag} {tag} main\n"
                                       f"deb-src [signed-by={key}] {url}/repos/{tag} {tag} main\n")
    conf = work / "apt.conf"
    conf.write_text("".join(f'{k} "{v}";\n' for k, v in {
        "Dir::Etc::SourceList": work / "sources.list", "Dir::Etc::SourceParts": work / "empty",
        "Dir::Etc::Parts": work / "empty", "Dir::Etc::Preferences": work / "none",
        "Dir::Etc::PreferencesParts": work / "empty", "Dir::State": work / "state",
        "Dir::State::status": work / "status", "Dir::Cache": work / "cache", "Debug::NoLocking": "true",
        "APT::Architecture": "amd64", "APT::Sandbox::User": "root", "Acquire::Languages": "none",
        "APT::Update::Error-Mode": "any"}.items()))
    res = subprocess.run(["apt-get", "update"], env={**os.environ, "APT_CONFIG": str(conf)}, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, f"apt-get update failed:\n{res.stdout}\n{res.stderr}"
    lists = work / "state" / "lists"
    wanted: dict[str, str] = {}  # pool path -> sha256 (an arch:all package may be in two Packages files)
    for f in lists.glob("*_Packages"):
        with f.open() as fh:
            wanted.update((p["Filename"], p["SHA256"]) for p in Packages.iter_paragraphs(fh))
    for f in lists.glob("*_Sources"):
        with f.open() as fh:
            for s in Sources.iter_paragraphs(fh):
                wanted.update((f"{s['Directory']}/{x['name']}", x["sha256"]) for x in s["Checksums-Sha256"])
    assert wanted, f"apt found no packages in {tag}: {sorted(p.name for p in lists.iterdir())}"
    for path, sha in wanted.items():
        resp = httpx.get(f"{url}/repos/{tag}/{path}", timeout=30)
        assert resp.status_code == 200, f"{path}: HTTP {resp.status_code}"
        assert hashlib.sha256(resp.content).hexdigest() == sha, f"{path}: not the file the index names"
    return len(wanted)
