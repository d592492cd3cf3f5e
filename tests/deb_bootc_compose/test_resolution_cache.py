"""gather reuses the previous resolution when every source's InRelease is unchanged, and resolves again when one
changed: a real signed second source (made with debarchive, served over HTTP) whose content the test changes."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import SimpleHTTPRequestHandler
from pathlib import Path

import pytest
import yaml

from deb_bootc_compose.lockfile import Lockfile
from deb_bootc_compose.manifest import load as load_manifest
from deb_bootc_compose.paths import TargetPaths
from deb_bootc_compose.phases.base import ComposeContext
from deb_bootc_compose.phases.gather import GatherPhase
from deb_bootc_compose.phases.init import InitPhase
from deb_bootc_compose.resolution_cache import ReleaseState, ResolutionCache, fetch_releases
from debarchive import aptrepo
from debarchive.signing import SigningKey
from debarchive.stanzas import import_deb
from httpserve import serve_directory

SUITE = "noop-extra"


class _Handler(SimpleHTTPRequestHandler):
    requests: list[tuple[str, int]] = []

    def log_message(self, format: str, *args: object) -> None:
        pass

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        try:
            status = int(code)
        except ValueError:
            status = 0
        type(self).requests.append((self.path, status))


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    root = tmp_path / "www"
    root.mkdir()
    _Handler.requests = []
    with serve_directory(root, _Handler) as url:
        yield root, url


def make_deb(work: Path, name: str, version: str) -> Path:
    pkg = work / f"{name}-{version}"
    (pkg / "DEBIAN").mkdir(parents=True)
    (pkg / "usr/share/doc" / name).mkdir(parents=True)
    (pkg / "usr/share/doc" / name / "marker").write_text(f"{name} {version}\n")
    (pkg / "DEBIAN/control").write_text(
        f"Package: {name}\nVersion: {version}\nArchitecture: all\nMaintainer: Test <test@example.org>\n"
        f"Description: marker package for the resolution cache test\n"
    )
    deb = work / f"{name}_{version}_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(pkg), str(deb)], check=True,
                   capture_output=True)
    return deb


# ---- pure logic: the fetch and the decision ----
def test_fetch_conditional_get_and_file_urls(http_root: tuple[Path, str], tmp_path: Path) -> None:
    root, url = http_root
    (root / "dists/s").mkdir(parents=True)
    (root / "dists/s/InRelease").write_bytes(b"Origin: x\nSuite: s\n")
    local = tmp_path / "local/dists/s/InRelease"
    local.parent.mkdir(parents=True)
    local.write_bytes(b"Origin: y\n")
    urls = [f"{url}/dists/s/InRelease", f"file://{local}"]
    first = fetch_releases(urls)
    assert first[urls[0]].sha256 == hashlib.sha256(b"Origin: x\nSuite: s\n").hexdigest()
    assert first[urls[0]].last_modified
    assert first[urls[1]].sha256 == hashlib.sha256(b"Origin: y\n").hexdigest()
    # unchanged: the server answers 304 and the recorded state is kept
    second = fetch_releases(urls, first)
    assert second[urls[0]] == first[urls[0]]
    assert ("/dists/s/InRelease", 304) in _Handler.requests


def test_reusable_decisions(tmp_path: Path) -> None:
    mpath = tmp_path / "m.yaml"
    mpath.write_text(yaml.safe_dump({"name": "x", "version": "1", "suite": "trixie",
                                     "sources": [{"url": "http://deb.debian.org/debian"}], "packages": ["hello"]}))
    manifest = load_manifest(mpath)
    cache = ResolutionCache(tmp_path / "state", manifest, tmp_path)
    (url,) = cache.urls
    assert url == "http://deb.debian.org/debian/dists/trixie/InRelease"
    lock = Lockfile(name="x", version="1", suite="trixie", source_date_epoch=1, sources=[], variants={})
    state = ReleaseState(url, "a" * 64)
    assert cache.reusable({url: state})[0] is None  # nothing recorded yet
    assert cache.reusable(None)[1] == "the sources' InRelease files could not be checked"
    # apt read another InRelease than the one fetched: not recorded
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "deb.debian.org_debian_dists_trixie_InRelease").write_bytes(b"other")
    assert "changed while apt was reading it" in str(cache.record({url: state}, lock, [lists], "x-1"))
    # the same bytes apt read: recorded and reusable
    data = b"Suite: trixie\n"
    (lists / "deb.debian.org_debian_dists_trixie_InRelease").write_bytes(data)
    state = ReleaseState(url, hashlib.sha256(data).hexdigest())
    assert cache.record({url: state}, lock, [lists], "x-1") is None
    again, why = cache.reusable({url: state})
    assert again == lock and "unchanged since x-1" in why
    changed, why = cache.reusable({url: ReleaseState(url, "b" * 64)})
    assert changed is None and why == f"{url} changed since the last resolution"
    past = format_datetime(datetime.now(UTC) - timedelta(days=1), usegmt=True)
    expired, why = cache.reusable({url: ReleaseState(url, state.sha256, valid_until=past)})
    assert expired is None and "past its Valid-Until" in why
    future = format_datetime(datetime.now(UTC) + timedelta(days=1), usegmt=True)
    assert cache.reusable({url: ReleaseState(url, state.sha256, valid_until=future)})[0] == lock
    # another manifest (or tool version) has another key: its own record
    manifest.packages.append("systemd")
    assert ResolutionCache(tmp_path / "state", manifest, tmp_path).key != cache.key


# ---- for real: the Debian mirror plus a signed repository that changes ----
def gather(mpath: Path, target: TargetPaths, compose_id: str) -> tuple[Lockfile, str]:
    ctx = ComposeContext(manifest=load_manifest(mpath), manifest_path=mpath, target=target,
                         paths=target.compose(compose_id), compose_id=compose_id, compose_type="test")
    InitPhase(ctx).run()
    GatherPhase(ctx).run()
    assert ctx.lockfile is not None
    return ctx.lockfile, (ctx.paths.logs / "gather.log").read_text()


@pytest.mark.integration
def test_unchanged_sources_skip_apt_changed_source_resolves(http_root: tuple[Path, str], tmp_path: Path) -> None:
    root, url = http_root
    repo = root / "extra"
    key = SigningKey.ensure(tmp_path / "gnupg")
    key.export_public(tmp_path / "extra.asc")
    v1 = import_deb(repo, make_deb(tmp_path, "noop-marker", "1.0"))
    aptrepo.publish(repo, SUITE, packages=[v1], key=key, origin="noop-test", label="noop-test")
    mpath = tmp_path / "m.yaml"
    mpath.write_text(yaml.safe_dump({
        "name": "noop", "version": "1", "suite": "trixie",
        "sources": [{"url": "http://deb.debian.org/debian", "components": ["main"]},
                    {"url": f"{url}/extra", "suite": SUITE, "components": ["main"], "key": "extra.asc"}],
        "packages": ["hello", "noop-marker"],
    }))
    target = TargetPaths(tmp_path / "target")

    def marker(lock: Lockfile) -> str:
        return next(p.version for p in lock.variant("base", "amd64").packages if p.name == "noop-marker")

    lock1, log1 = gather(mpath, target, "noop-1-20260101.t.0")
    assert "resolving: no earlier resolution" in log1 and "apt-get update" in log1
    assert marker(lock1) == "1.0"
    # nothing changed: no apt at all, the same lockfile
    lock2, log2 = gather(mpath, target, "noop-1-20260101.t.1")
    assert "every InRelease is unchanged since noop-1-20260101.t.0: reusing that resolution (apt not run)" in log2
    assert "apt-get update" not in log2 and "resolving" not in log2
    assert lock2.digest() == lock1.digest()
    assert (target.compose("noop-1-20260101.t.1").lockfile).is_file()
    # a new version in the second source: its InRelease changed, apt resolves again and finds it
    v2 = import_deb(repo, make_deb(tmp_path, "noop-marker", "2.0"))
    aptrepo.publish(repo, SUITE, packages=[v1, v2], key=key, origin="noop-test", label="noop-test")
    lock3, log3 = gather(mpath, target, "noop-1-20260101.t.2")
    assert f"resolving: {url}/extra/dists/{SUITE}/InRelease changed since the last resolution" in log3
    assert "apt-get update" in log3
    assert marker(lock3) == "2.0"
    assert {p.name for p in lock3.variant("base", "amd64").packages} == {
        p.name for p in lock1.variant("base", "amd64").packages}
    # and that new resolution is the one reused next
    lock4, log4 = gather(mpath, target, "noop-1-20260101.t.3")
    assert "reusing that resolution (apt not run)" in log4
    assert marker(lock4) == "2.0" and lock4.digest() == lock3.digest()
