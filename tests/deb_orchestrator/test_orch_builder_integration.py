"""The whole orchestrator for real: a hub process, builder processes running deb-mock, the CLI, and clean
trixie (sqv) and bookworm (gpgv) chroots installing the result from the signed tag repo. Also kill -9 of a
builder in the middle of a build."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from orch_apt import apt_install_from, chroot_tarball
from orch_helpers import make_source
from orch_hub import CLI, HubProcess, stop_builder

from deb_orchestrator.client import HubClient

pytestmark = pytest.mark.integration


def debmock_cache(test_cache: Path) -> Path:
    """deb-mock's cache for these builds: the one deb-mock's own tests use, so root caches are shared."""
    return test_cache / "deb-mock"


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[HubProcess]:
    h = HubProcess(tmp_path / "data", "--lease", "6.0", "--heartbeat", "1", log=tmp_path / "hub.log")
    yield h
    h.stop()


def test_build_hello_and_install_from_tag_repo(hub: HubProcess, tmp_path: Path, test_cache: Path, mirror: str) -> None:
    with HubClient(hub.url, hub.token) as admin:  # base (the trixie mirror) <- dest <- build; trixie: build -> dest
        admin.setup_target("trixie", mirror=mirror, suite="trixie", base="base", dest="dest", build="build")
    token = hub.cli("add-host", "builder-1", "--arch", "amd64").stdout.strip().splitlines()[-1]
    builder = hub.builder(token, debmock_cache(test_cache), tmp_path / "builder.log")
    try:
        url = f"{mirror}/pool/main/h/hello/hello_2.10-3.dsc"
        res = hub.cli("build", "trixie", url, "--wait", timeout=1800)
        assert "build hello_2.10-3" in res.stdout
        assert "closed" in res.stderr
        again = hub.cli("build", "trixie", url)  # duplicate: the existing build and task
        assert "submitted before" in again.stderr
        hub.cli("wait-repo", "dest", "--build", "hello_2.10-3", timeout=120)
        hub.cli("download-logs", "hello_2.10-3", "--dir", str(tmp_path / "logs"))
        logs = list((tmp_path / "logs").rglob("build.log"))
        assert logs and "dpkg-buildpackage" in logs[0].read_text()
    finally:
        stop_builder(builder)
    assert builder.returncode == 0, (tmp_path / "builder.log").read_text()[-3000:]
    with HubClient(hub.url) as client:
        b = client.build("hello_2.10-3")
        assert b["state"] == "complete"
        assert {p["name"] for p in b["packages"]} >= {"hello"}
        # the target's suite is trixie; the hub found 2.10-3 in bookworm's index, signed by Debian's archive key
        assert b["source_trust"] == "archive" and "bookworm" in b["source_verification"], b
        root = next(iter(b["buildroots"].values()))
        assert any(p["package"] == "gcc" or p["package"].startswith("gcc-") for p in root)
        key = client.repo_key("dest")
        line = client.sources_line("dest", "/etc/apt/keyrings/hub.asc")
    # trixie's apt (sqv) installs it; bookworm's gpgv is checked with the arch:all package of the next test
    # (a trixie-built hello needs trixie's libc6)
    version = apt_install_from(chroot_tarball(test_cache, "trixie", mirror), tmp_path / "chroot", line, key, "hello")
    assert version == "2.10-3"


def test_kill_9_builder_mid_build(hub: HubProcess, tmp_path: Path, test_cache: Path, mirror: str) -> None:
    hub.cli("add-tag", "base", "--arch", "amd64", "--external-repo", mirror, "trixie", "main")
    hub.cli("add-target", "t", "base", "base")
    tokens = [hub.cli("add-host", f"b{i}", "--arch", "amd64").stdout.strip().splitlines()[-1] for i in (1, 2)]
    (tmp_path / "src").mkdir()
    dsc = make_source(tmp_path / "src", "orch-kill", "1.0", build_depends="debhelper-compat (= 13)")
    cache = debmock_cache(test_cache)
    first = hub.builder(tokens[0], cache, tmp_path / "b1.log")
    second = None
    try:
        out = hub.cli("build", "t", str(dsc), "--json")
        assert '"existing": false' in out.stdout
        client = HubClient(hub.url)
        deadline = time.monotonic() + 600
        while True:  # wait until b1 runs it and deb-mock is working (the log tail grows)
            task = next(t for t in client.tasks() if t["method"] == "buildArch")
            full = client.task(task["id"])
            if task["state"] == "open" and task["host"] == "b1" and full["log_tail"]:
                break
            assert time.monotonic() < deadline, "b1 never started the build"
            time.sleep(0.5)
        os.killpg(first.pid, signal.SIGKILL)  # the machine dies: no hand-back, no more heartbeats
        first.wait()
        second = hub.builder(tokens[1], cache, tmp_path / "b2.log")
        final = client.wait_task(task["parent_id"], timeout=900)
        assert final["state"] == "closed", final
        done = client.task(task["id"])
        assert done["host"] == "b2" and done["attempts"] == 2
        assert len(client.builds()) == 1 and client.build("orch-kill_1.0")["state"] == "complete"
        reasons = [e["data"].get("reason", "") for e in client.events() if e["kind"] == "task.requeued"]
        assert any("b1 stopped heartbeating" in r for r in reasons)
        client.wait_repo("base", build="orch-kill_1.0", timeout=120)
        key = client.repo_key("base")
        line = client.sources_line("base", "/etc/apt/keyrings/hub.asc")
        client.close()
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
        if second is not None:
            stop_builder(second)
    # the arch:all result installs in clean bookworm (gpgv) and trixie (sqv) chroots from the signed repo
    for suite in ("bookworm", "trixie"):
        version = apt_install_from(chroot_tarball(test_cache, suite, mirror), tmp_path / f"chroot-{suite}", line,
                                   key, "orch-kill")
        assert version == "1.0"



def test_real_failure_and_dep_wait_release(hub: HubProcess, tmp_path: Path, test_cache: Path, mirror: str) -> None:
    """A failing build keeps its logs; a build missing a build-dependency waits (Dep-Wait) and is built by
    itself once another build puts the missing package in the repository its build tag sees."""
    with HubClient(hub.url, hub.token) as admin:  # base (the trixie mirror) <- dest <- build; trixie: build -> dest
        admin.setup_target("trixie", mirror=mirror, suite="trixie", base="base", dest="dest", build="build")
    token = hub.cli("add-host", "b1", "--arch", "amd64").stdout.strip().splitlines()[-1]
    src = tmp_path / "src"
    src.mkdir()
    failing = make_source(src, "orch-fail", "1.0", build_depends="debhelper-compat (= 13)",
                          rules_extra="override_dh_auto_build:\n\techo deliberate failure; exit 1\n")
    needs = make_source(src, "orch-needs", "1.0", build_depends="debhelper-compat (= 13), orch-lib-dev")
    lib = make_source(src, "orch-lib", "1.0", build_depends="debhelper-compat (= 13)", binaries=["orch-lib-dev"])
    builder = hub.builder(token, debmock_cache(test_cache), tmp_path / "builder.log")
    try:
        res = subprocess.run([*CLI, "build", "trixie", str(failing), "--wait"], env=hub.env, capture_output=True,
                             text=True, timeout=900)
        assert res.returncode == 1 and "failed" in res.stderr, res.stderr
        hub.cli("download-logs", "orch-fail_1.0", "--dir", str(tmp_path / "logs"))
        assert "deliberate failure" in next((tmp_path / "logs").rglob("build.log")).read_text()
        client = HubClient(hub.url, hub.token)
        sub = client.submit("trixie", needs)
        deadline = time.monotonic() + 900
        while client.build("orch-needs_1.0")["state"] != "dep-wait":
            assert client.build("orch-needs_1.0")["state"] == "building"
            assert time.monotonic() < deadline
            time.sleep(1)
        waiting = next(t for t in client.build("orch-needs_1.0")["tasks"] if t["method"] == "buildArch")
        assert any("orch-lib-dev" in m["packages"] for m in waiting["missing"]), waiting
        client.submit("trixie", lib)  # lands in dest, which build inherits: orch-needs is requeued by itself
        final = client.wait_task(sub["task"]["id"], timeout=1200)
        assert final["state"] == "closed", final
        b = client.build("orch-needs_1.0")
        assert b["state"] == "complete"
        assert any(p["package"] == "orch-lib-dev" for root in b["buildroots"].values() for p in root)
        client.close()
    finally:
        stop_builder(builder)
