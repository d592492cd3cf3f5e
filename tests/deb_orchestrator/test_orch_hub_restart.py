"""The hub killed (-9) in the middle of a real build and started again on the same data directory, database
and port: the real builder process (deb-mock) keeps its attempt, the build completes once, its repository is
published, and nothing recorded before the crash is lost. On SQLite and on PostgreSQL (a scratch database)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from orch_helpers import make_source
from orch_hub import database_url, free_port

from deb_orchestrator.client import HubClient, HubError

pytestmark = pytest.mark.integration

CLI = [sys.executable, "-m", "deb_orchestrator.cli"]
SLOW_BUILD = "override_dh_auto_build:\n\techo building slowly; sleep 20\n"  # long enough to restart the hub in


def start_hub(data: Path, db: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([*CLI, "hub", "--data", str(data), "--db", db, "--listen", f"127.0.0.1:{port}",
                             "--lease", "30", "--heartbeat", "1"],
                            stdout=log.open("a"), stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/health").status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        assert proc.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, "the hub did not start"
        time.sleep(0.2)


def kill_group(proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in reversed(started):  # builders first (SIGTERM: they hand back and exit), then hubs
        kill_group(proc, signal.SIGTERM)


def test_hub_killed_mid_build_and_restarted(db_kind: str, tmp_path: Path, test_cache: Path, mirror: str,
                                            processes: list[subprocess.Popen[bytes]]) -> None:
    data, port = tmp_path / "data", free_port()
    url = f"http://127.0.0.1:{port}"
    with database_url(db_kind, data) as db:
        hub = start_hub(data, db, port, tmp_path / "hub.log")
        processes.append(hub)
        token_text = (data / "admin.token").read_text()
        admin = HubClient(url, token_text.strip())
        admin.add_tag("base", external_repos=[{"url": mirror, "suite": "trixie", "components": ["main"]}])
        admin.add_tag("dest", parents=["base"])
        admin.add_tag("build", parents=["dest"])
        admin.add_target("t", "build", "dest")
        host_token = admin.add_host("b1", ["amd64"])["token"]
        dsc = make_source(tmp_path, "orch-restart", "1.0", build_depends="debhelper-compat (= 13)",
                          rules_extra=SLOW_BUILD)
        builder = subprocess.Popen(
            [*CLI, "builder", "--hub", url, "--cache-dir", str(test_cache / "deb-mock"),
             "--work-dir", str(tmp_path / "work")], env={**os.environ, "DEB_ORCHESTRATOR_TOKEN": host_token},
            stdout=(tmp_path / "builder.log").open("w"), stderr=subprocess.STDOUT, start_new_session=True)
        processes.insert(0, builder)
        sub = admin.submit("t", dsc)
        leaf = next(t for t in admin.task(sub["task"]["id"])["children"] if t["method"] == "buildArch")
        deadline = time.monotonic() + 900
        while "building slowly" not in admin.task(leaf["id"])["log_tail"]:  # dpkg-buildpackage is running
            assert builder.poll() is None, (tmp_path / "builder.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the build never reached dh_auto_build"
            time.sleep(0.5)
        before = admin.events(limit=1000)
        admin.close()

        kill_group(hub)  # the hub dies: no shutdown, no goodbye to the builder
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{url}/api/v1/health")
        time.sleep(2)  # the builder's heartbeats fail meanwhile
        hub = start_hub(data, db, port, tmp_path / "hub.log")
        processes.append(hub)

        assert (data / "admin.token").read_text() == token_text  # the first start's token, not a new one
        with HubClient(url, token_text.strip()) as admin:
            final = admin.wait_task(sub["task"]["id"], timeout=900)
            assert final["state"] == "closed", (final, (tmp_path / "builder.log").read_text()[-3000:])
            done = admin.task(leaf["id"])
            assert done["state"] == "closed" and done["host"] == "b1"
            assert done["attempts"] == 1 and done["fence"] == 1  # the same attempt went on through the restart
            assert [b["ident"] for b in admin.builds()] == ["orch-restart_1.0"]
            assert admin.build("orch-restart_1.0")["state"] == "complete"
            repo = admin.wait_repo("dest", build="orch-restart_1.0", timeout=120)
            assert repo["packages"] == 1
            assert httpx.get(f"{url}/repos/dest/pool/main/o/orch-restart/orch-restart_1.0_all.deb").status_code == 200
            after = admin.events(limit=1000)
            assert after[:len(before)] == before  # nothing recorded before the crash is lost
            kinds = [e["kind"] for e in after]
            assert kinds.count("build.submitted") == 1 and kinds.count("build.complete") == 1
            assert "task.requeued" not in kinds and kinds.count("task.claimed") == 1
            log = admin.request("GET", f"/tasks/{leaf['id']}/files/build.log").text
            assert "building slowly" in log
            with pytest.raises(HubError):  # the builder's token survived the restart; it still cannot administer
                HubClient(url, host_token).add_tag("x")
        kill_group(builder, signal.SIGTERM)
        assert builder.returncode == 0, (tmp_path / "builder.log").read_text()[-3000:]
        kill_group(hub, signal.SIGTERM)
