"""The seed loop for real: compose asks the hub for hello 2.10-3, a builder process builds it with deb-mock,
the hub publishes it in trixie-dest's signed repo, and the compose gathers it from there (over the mirror's
newer hello) into an OCI image whose dpkg database says 2.10-3; the deb-bootc client of a manifest with
update: built the same way and locked from the tag. Plus the build phase's clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_loop import HELLO_DSC, LoopHub, hello_manifest, phase_context, run_compose

from deb_bootc_compose.clientsource import TaggedClient
from deb_bootc_compose.phases.build import BuildPhase
from deb_bootc_compose.phases.gather import GatherPhase
from deb_bootc_compose.phases.init import InitPhase
from deb_bootc_compose.phases.metadata import package_rows
from deb_orchestrator.client import HubClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "deb_bootc_compose"))
from compose_helpers import harvest_target, seed_target

pytestmark = pytest.mark.integration


@pytest.fixture
def loop_hub(tmp_path: Path, mirror: str) -> Iterator[LoopHub]:
    hub = LoopHub(tmp_path / "hub-data")
    try:
        hub.setup_trixie(mirror)
        yield hub
    finally:
        hub.stop()


def test_compose_builds_hello_through_the_orchestrator(loop_hub: LoopHub, tmp_path: Path, test_cache: Path,
                                                       mirror: str) -> None:
    builder = loop_hub.start_builder("builder-1", test_cache / "deb-mock", tmp_path)
    manifest = hello_manifest(tmp_path / "hello-bootc.yaml", loop_hub.url, mirror)
    target = tmp_path / "composes"
    compose_cache = test_cache / "compose"
    (compose_cache / "pool").mkdir(parents=True, exist_ok=True)
    seed_target(compose_cache, target)
    run = run_compose(manifest, target, loop_hub.env, extra=["--keep-work"])  # token: DEB_ORCHESTRATOR_TOKEN
    harvest_target(compose_cache, target)
    assert run.returncode == 0, f"compose failed ({run.returncode}):\n{run.stderr[-5000:]}\n" + (
        (tmp_path / "builder-1.log").read_text()[-3000:])
    assert builder.poll() is None, "the builder died"
    # progress: which package, which state
    assert "hello_2.10-3: submitting" in run.stderr
    assert "buildArch amd64 open" in run.stderr or "buildArch amd64 closed" in run.stderr
    topdir = Path(run.stdout.strip().splitlines()[-1])

    with HubClient(loop_hub.url) as hub:
        build = hub.build("hello_2.10-3")
        assert build["state"] == "complete"
        tagged = {b["ident"] for b in hub.list_tagged("trixie-dest", inherit=False)}
        assert "hello_2.10-3" in tagged
        packages_file = hub.request("GET", "/repos/trixie-dest/dists/trixie-dest/main/binary-amd64/Packages",
                                    api=False).text
    assert "Package: hello\n" in packages_file and "Version: 2.10-3\n" in packages_file

    data = json.loads((topdir / "metadata" / "packages.json").read_text())
    rows = {r["name"]: r for r in data["payload"]["packages"]["base"]["amd64"]}
    hello = rows["hello"]
    assert hello["version"] == "2.10-3"  # the tag (pin 990) beats the mirror's 2.10-5
    assert hello["apt_source"] == f"{loop_hub.url}/repos/trixie-dest"
    assert hello["orchestrator_build"] == build["id"]
    assert hello["orchestrator_task"] == build["task_id"]
    assert rows["systemd"]["orchestrator_build"] is None and rows["systemd"]["apt_source"] == mirror
    compose_id = json.loads((topdir / "metadata" / "composeinfo.json").read_text())["payload"]["compose"]["id"]
    assert build["requested_by"] == f"compose {compose_id}"  # the hub knows which compose asked for it
    builds = json.loads((topdir / "metadata" / "builds.json").read_text())["payload"]["builds"]
    assert builds["hello_2.10-3"]["build_id"] == build["id"] and builds["hello_2.10-3"]["hosts"] == ["builder-1"]
    assert builds["hello_2.10-3"]["arch_tasks"]["amd64"] in {t["id"] for t in build["tasks"]}

    tree = topdir / "work" / "base" / "amd64" / "tree"
    listing = subprocess.run(["dpkg", f"--admindir={tree}/usr/lib/sysimage/dpkg", "-l", "hello"],
                             capture_output=True, text=True, check=True).stdout
    assert any(line.split()[:3] == ["ii", "hello", "2.10-3"] for line in listing.splitlines()), listing
    images = json.loads((topdir / "metadata" / "images.json").read_text())
    oci = [i for per_arch in images["payload"]["images"]["base"].values() for i in per_arch
           if i["format"] == "ociarchive"]
    assert oci and (topdir / oci[0]["path"]).is_file()


def test_unknown_target_is_a_clear_error(loop_hub: LoopHub, tmp_path: Path, mirror: str) -> None:
    manifest = hello_manifest(tmp_path / "m.yaml", loop_hub.url, mirror)
    manifest.write_text(manifest.read_text().replace("target: trixie", "target: sid"))
    run = run_compose(manifest, tmp_path / "composes", loop_hub.env, timeout=600)
    assert run.returncode != 0
    assert "sid" in run.stderr and "add-target" in run.stderr, run.stderr[-3000:]
    assert loop_hub.cli("list-builds", "--json").stdout.strip() in ("[]", "")  # nothing was submitted


def test_missing_token_is_a_clear_error(loop_hub: LoopHub, tmp_path: Path, mirror: str) -> None:
    manifest = hello_manifest(tmp_path / "m.yaml", loop_hub.url, mirror)
    env = {k: v for k, v in loop_hub.env.items() if k != "DEB_ORCHESTRATOR_TOKEN"}
    env["DEB_ORCHESTRATOR_CONFIG"] = str(tmp_path / "no-config.toml")
    run = run_compose(manifest, tmp_path / "composes", env, timeout=600)
    assert run.returncode != 0
    assert "DEB_ORCHESTRATOR_TOKEN" in run.stderr, run.stderr[-3000:]


def test_bad_build_source_is_a_clear_error(loop_hub: LoopHub, tmp_path: Path, mirror: str) -> None:
    manifest = hello_manifest(tmp_path / "m.yaml", loop_hub.url, mirror)
    manifest.write_text(manifest.read_text().replace(f"{mirror}/{HELLO_DSC}", "missing/hello_9.9-1.dsc"))
    run = run_compose(manifest, tmp_path / "composes", loop_hub.env, timeout=600)
    assert run.returncode != 0
    assert "missing/hello_9.9-1.dsc" in run.stderr and "relative to the manifest" in run.stderr, run.stderr[-3000:]


def test_update_client_built_by_a_builder_is_locked_from_the_tag(loop_hub: LoopHub, tmp_path: Path, test_cache: Path,
                                                                 mirror: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A manifest with update: and build.target: a real builder builds the deb-bootc client (its version carries
    its source hash) with deb-mock, the hub publishes it in trixie-dest, and gather locks that .deb from the tag
    repository (pinned, at its exact version) with what it depends on."""
    builder = loop_hub.start_builder("builder-1", test_cache / "deb-mock", tmp_path)
    monkeypatch.setenv("DEB_ORCHESTRATOR_TOKEN", loop_hub.token)
    ctx, messages = phase_context(tmp_path, loop_hub.url, [], target="trixie", tag="trixie-dest", mirror=mirror,
                                  packages="[systemd]", update=True)
    compose_cache = test_cache / "compose"
    (compose_cache / "pool").mkdir(parents=True, exist_ok=True)
    seed_target(compose_cache, ctx.target.target)
    InitPhase(ctx).run()
    try:
        BuildPhase(ctx).run()
    except Exception:
        print((tmp_path / "builder-1.log").read_text()[-3000:])
        raise
    client = ctx.client_deb
    assert isinstance(client, TaggedClient) and "+src" in client.version, messages
    assert builder.poll() is None, "the builder died"
    ident = f"deb-bootc_{client.version}"
    with HubClient(loop_hub.url) as hub:
        build = hub.build(ident)
        debs = [f for f in build["files"] if f["name"] == f"{ident}_all.deb"]
    assert build["state"] == "complete" and len(debs) == 1

    GatherPhase(ctx).run()
    harvest_target(compose_cache, ctx.target.target)
    assert ctx.lockfile is not None
    lv = ctx.lockfile.variant("base", "amd64")
    locked = {p.name: p for p in lv.packages}
    deb = locked["deb-bootc"]
    repo = f"{loop_hub.url}/repos/trixie-dest"
    assert (deb.version, deb.arch, deb.repo, deb.sha256) == (client.version, "all", repo, debs[0]["sha256"])
    assert deb.url.startswith(repo + "/") and (deb.source, deb.source_version) == ("deb-bootc", client.version)
    assert {"python3", "ostree"} <= set(locked) and locked["python3"].repo == mirror
    added = {a.name: a.reason for a in lv.added}
    assert "built by the orchestrator" in added["deb-bootc"] and added["python3"] == "needed by deb-bootc"
    assert f"repo: {repo}" in ctx.paths.lockfile.read_text()
    rows = {r.name: r for r in package_rows(lv, ctx.orchestrator_builds)}  # what packages.json says
    assert (rows["deb-bootc"].orchestrator_build, rows["deb-bootc"].orchestrator_task) == (build["id"],
                                                                                          build["task_id"])
    assert rows["python3"].orchestrator_build is None
    pooled = ctx.target.pool_deb(deb.sha256)
    listing = subprocess.run(["dpkg-deb", "-c", str(pooled)], check=True, capture_output=True, text=True).stdout
    assert "./usr/bin/deb-bootc" in listing and os.path.getsize(pooled) == deb.size
