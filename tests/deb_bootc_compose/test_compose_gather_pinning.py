"""gather against a signed tag repository served over HTTP (the orchestrator's layout): tag sources win over
the mirror by default through apt pinning, even with an older version; ``priority:`` overrides it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from deb_bootc_compose.errors import ComposeError
from deb_bootc_compose.lockfile import Lockfile
from deb_bootc_compose.manifest import load as load_manifest
from deb_bootc_compose.paths import TargetPaths
from deb_bootc_compose.phases.base import ComposeContext
from deb_bootc_compose.phases.gather import GatherPhase
from deb_bootc_compose.phases.init import InitPhase
from debarchive import aptrepo
from debarchive.signing import SigningKey
from debarchive.stanzas import import_deb
from httpserve import serve_directory

pytestmark = pytest.mark.integration
TAG = "trixie-dest"
OLD_HELLO = "pool/main/h/hello/hello_2.10-3_amd64.deb"  # bookworm's build; trixie has 2.10-5


@pytest.fixture(scope="module")
def tag_hub(tmp_path_factory: pytest.TempPathFactory, mirror: str, compose_cache: Path) -> Iterator[str]:
    """A signed repository at <hub>/repos/<tag>/ holding hello 2.10-3, key at <hub>/repos/<tag>/key.asc."""
    root = tmp_path_factory.mktemp("hub")
    repo = root / "repos" / TAG
    deb = compose_cache / "hello_2.10-3_amd64.deb"
    if not deb.exists():
        resp = httpx.get(f"{mirror}/{OLD_HELLO}", timeout=60)
        resp.raise_for_status()
        deb.write_bytes(resp.content)
    key = SigningKey.ensure(root / "gnupg")
    entry = import_deb(repo, deb)
    key.export_public(repo / "key.asc")
    aptrepo.publish(repo, TAG, packages=[entry], key=key, origin="deb-orchestrator", label=f"deb-orchestrator {TAG}")
    with serve_directory(root) as url:
        yield url


def gather(tmp_path: Path, hub: str, priority: int | None = None) -> Lockfile:
    orch: dict[str, object] = {"orchestrator": {"url": hub, "tag": TAG}}
    if priority is not None:
        orch["priority"] = priority
    data = {"name": "hello-bootc", "version": "1", "suite": "trixie",
            "sources": [{"url": "http://deb.debian.org/debian", "components": ["main"]}, orch],
            "packages": ["systemd", "hello"]}
    mpath = tmp_path / "m.yaml"
    mpath.write_text(yaml.safe_dump(data))
    target = TargetPaths(tmp_path / "target")
    ctx = ComposeContext(manifest=load_manifest(mpath), manifest_path=mpath, target=target,
                         paths=target.compose("hello-bootc-1-20260101.0"), compose_id="hello-bootc-1-20260101.0",
                         compose_type="production")
    InitPhase(ctx).run()
    GatherPhase(ctx).run()
    lock = ctx.lockfile
    assert lock is not None
    return lock


def test_tag_source_wins_over_newer_mirror_version(tmp_path: Path, tag_hub: str) -> None:
    lock = gather(tmp_path, tag_hub)
    pkgs = {p.name: p for p in lock.variant("base", "amd64").packages}
    assert pkgs["hello"].version == "2.10-3"
    assert pkgs["hello"].repo == f"{tag_hub}/repos/{TAG}"
    assert pkgs["hello"].url.startswith(f"{tag_hub}/repos/{TAG}/pool/")
    assert pkgs["systemd"].repo == "http://deb.debian.org/debian"
    # the tag's key was fetched from the hub and is recorded as the source's keyring
    keys = list((tmp_path / "target/.state/apt").glob("*/keys/source1.gpg"))
    assert len(keys) == 1 and keys[0].stat().st_size > 0


def test_priority_overrides_the_default(tmp_path: Path, tag_hub: str) -> None:
    lock = gather(tmp_path, tag_hub, priority=100)
    hello = next(p for p in lock.variant("base", "amd64").packages if p.name == "hello")
    assert hello.version != "2.10-3" and hello.repo == "http://deb.debian.org/debian"


def test_unreachable_hub(tmp_path: Path) -> None:
    wanted = r"orchestrator source http://127.0.0.1:9 \(tag trixie-dest\) is unreachable"
    with pytest.raises(ComposeError, match=wanted):
        gather(tmp_path, "http://127.0.0.1:9")


def test_orchestrator_option_overrides_the_url(tmp_path: Path, tag_hub: str) -> None:
    """--orchestrator URL replaces the manifest's (unreachable) hub URL: apt then reads the tag repository."""
    from compose_helpers import run_cli

    data = {"name": "hello-bootc", "version": "1", "suite": "trixie",
            "sources": [{"url": "http://deb.debian.org/debian", "components": ["main"]},
                        {"orchestrator": {"url": "http://127.0.0.1:9", "tag": TAG}}],
            "packages": ["hello", "no-such-package-4711"]}
    mpath = tmp_path / "m.yaml"
    mpath.write_text(yaml.safe_dump(data))
    run = run_cli(["--config", str(mpath), "--target-dir", str(tmp_path / "t"), "--orchestrator", tag_hub])
    assert run.returncode == 1
    assert "no-such-package-4711 not found in suite trixie" in run.stderr
    assert f"{tag_hub}/repos/{TAG} {TAG} main" in run.stderr
    assert "127.0.0.1:9" not in run.stderr
