"""Interruptions leave nothing behind (issue 10): SIGINT and SIGTERM to a builder in the middle of a real
deb-mock build stop and reap every process it started, hand the task back, and the next builder started at
once builds it; SIGTERM to the hub while it publishes a tag repository leaves the published repository whole
(the old generation or the new one) and the next hub start working."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from orch_helpers import make_source
from orch_hub import HubProcess, stop_builder

from deb_orchestrator.client import HubClient
from debsandbox.procs import alive, descendants

pytestmark = pytest.mark.integration
SLOW_BUILD = "override_dh_auto_build:\n\techo building slowly; sleep 25\n"  # signalled in this window


def test_builder_sigint_and_sigterm_mid_build(tmp_path: Path, test_cache: Path, mirror: str) -> None:
    hub = HubProcess(tmp_path / "data", "--lease", "300", "--heartbeat", "1")
    builders: list[subprocess.Popen[bytes]] = []
    try:
        admin = HubClient(hub.url, hub.token)
        admin.add_tag("base", external_repos=[{"url": mirror, "suite": "trixie"}])
        admin.add_target("t", "base", "base")
        tokens = [admin.add_host(f"b{i}", ["amd64"])["token"] for i in (1, 2, 3)]
        dsc = make_source(tmp_path, "orch-int", "1.0", build_depends="debhelper-compat (= 13)",
                          rules_extra=SLOW_BUILD)
        sub = admin.submit("t", dsc)
        leaf = next(t for t in admin.task(sub["task"]["id"])["children"] if t["method"] == "buildArch")
        cache = test_cache / "deb-mock"
        for i, sig in enumerate((signal.SIGINT, signal.SIGTERM)):
            proc = hub.builder(tokens[i], cache, tmp_path / f"b{i}.log", work=tmp_path / f"work{i}")
            builders.append(proc)
            deadline = time.monotonic() + 1200
            while True:  # dpkg-buildpackage runs in the sandbox: the build is in the middle of its work
                task = admin.task(leaf["id"])
                if task["host"] == f"b{i + 1}" and "building slowly" in task["log_tail"]:
                    break
                assert proc.poll() is None, (tmp_path / f"b{i}.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "the build never started"
                time.sleep(0.5)
            below = descendants(proc.pid)
            assert any("sleep" in Path(f"/proc/{p}/cmdline").read_text(errors="replace")
                       for p in below if alive(p)), "the build's processes are not below the builder"
            stopped = time.monotonic()
            proc.send_signal(sig)
            assert proc.wait(120) == 0, (tmp_path / f"b{i}.log").read_text()[-3000:]
            seconds = time.monotonic() - stopped
            left = sorted(p for p in below if alive(p))
            assert not left, f"{signal.Signals(sig).name}: processes {left} outlived the builder"
            assert seconds < 60, f"the builder took {seconds:.0f} s to stop"
            after = admin.task(leaf["id"])
            assert after["state"] == "free" and after["host"] is None, after  # handed back, not left to the lease
            assert not list((tmp_path / f"work{i}").glob("task-*")), "the build's work directory was left behind"
            print(f"{signal.Signals(sig).name}: builder stopped in {seconds:.1f} s, {len(below)} processes reaped")
        last = hub.builder(tokens[2], cache, tmp_path / "b2.log", work=tmp_path / "work2")
        builders.append(last)
        final = admin.wait_task(sub["task"]["id"], timeout=1800)
        assert final["state"] == "closed", final
        assert admin.task(leaf["id"])["host"] == "b3"
        released = [e for e in admin.events(limit=1000) if e["kind"] == "task.released"]
        assert len(released) == 2
        admin.close()
    finally:
        for proc in builders:
            stop_builder(proc)
        hub.stop()


def check_repo(root: Path, tag: str) -> Path:
    """The published generation of a tag's repo is whole: Release lists every index with its hash and
    size, and InRelease signs that same Release. Returns the generation's directory."""
    import hashlib

    link = root / tag / "dists" / tag
    assert link.is_symlink(), f"{link} is not a published generation"
    gen = link.resolve(strict=True)
    release = (gen / "Release").read_text()
    assert release in (gen / "InRelease").read_text(), f"{gen}: InRelease does not sign Release"
    listed = 0
    in_sha256 = False
    for line in release.splitlines():
        if not line.startswith(" "):
            in_sha256 = line.startswith("SHA256:")
            continue
        if in_sha256:
            digest, size, name = line.split()
            path = gen / name
            assert path.stat().st_size == int(size), f"{path}: size differs from Release"
            assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, f"{path}: hash differs from Release"
            listed += 1
    assert listed >= 2, release
    return gen


def test_hub_sigterm_while_publishing(tmp_path: Path, mirror: str) -> None:
    data = tmp_path / "data"
    hub = HubProcess(data, "--heartbeat", "1")
    tags = ["base", *[f"t{i:02d}" for i in range(30)]]
    try:
        with HubClient(hub.url, hub.token) as admin:
            admin.add_tag("base", external_repos=[{"url": mirror, "suite": "trixie"}])
            for t in tags[1:]:
                admin.add_tag(t, parents=["base"])
            for t in tags:
                admin.wait_repo(t, timeout=300)
            before = {t: check_repo(data / "repos", t) for t in tags}
            admin.regen_repo("base")  # base and the 30 tags inheriting it: one publication after the other
        deadline = time.monotonic() + 120
        while not any((data / "repos" / t / "dists" / t).resolve() != before[t] for t in tags):
            assert time.monotonic() < deadline, "the publication never started"
            time.sleep(0.01)
        stopped = time.monotonic()
        os.killpg(hub.proc.pid, signal.SIGTERM)  # as a service manager does: the hub and its gpg children
        # uvicorn shuts down cleanly, then re-raises the signal: "terminated by SIGTERM" is its normal end
        assert hub.proc.wait(60) in (0, -signal.SIGTERM), hub.log_path.read_text()[-3000:]
        assert "Application shutdown complete" in hub.log_path.read_text()
        seconds = time.monotonic() - stopped
    finally:
        hub.stop()
    after = {t: check_repo(data / "repos", t) for t in tags}  # every repo whole: the old generation or the new
    republished = [t for t in tags if after[t] != before[t]]
    assert 0 < len(republished) < len(tags), "the hub did not stop in the middle of publishing"
    assert seconds < 20, f"the hub took {seconds:.0f} s to stop"
    print(f"SIGTERM mid-publication: stopped in {seconds:.1f} s with {len(republished)} of {len(tags)} repos "
          "republished; every repo whole")
    import sqlite3

    with sqlite3.connect(data / "hub.db") as db:
        last_event = db.execute("SELECT max(id) FROM events").fetchone()[0]
    again = HubProcess(data, "--heartbeat", "1")  # at once, on the same data: it publishes every repo again
    try:
        with HubClient(again.url) as client:
            deadline = time.monotonic() + 300
            while True:
                events = client.events(after=last_event, limit=5000)
                assert not [e for e in events if e["kind"] == "repo.failed"], events
                if {e["data"]["tag"] for e in events if e["kind"] == "repo.published"} >= set(tags):
                    break
                assert time.monotonic() < deadline, "the next hub did not publish every repo"
                time.sleep(0.5)
            assert all(r["state"] == "ready" for r in client.get("/repos")), client.get("/repos")
        for t in tags:
            check_repo(data / "repos", t)
            assert not list((data / "repos" / t / "dists" / ".generations" / t).glob(".tmp-*"))
    finally:
        again.stop()
