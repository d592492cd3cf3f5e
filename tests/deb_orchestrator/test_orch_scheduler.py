"""Scheduling over real HTTP: long-poll dispatch, leases and fencing, retries, cancel, resubmit, dep-wait,
hub restart. The builders here speak the real protocol but "build" with dpkg-deb (see orch_helpers)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from orch_helpers import FakeBuilder, make_source
from orch_hub import HubFactory, RunningHub

from deb_orchestrator.client import HubClient, HubError

MIRROR = "http://deb.debian.org/debian"


def setup(hub: RunningHub) -> HubClient:
    admin = hub.admin
    admin.add_tag("base", external_repos=[{"url": MIRROR, "suite": "trixie", "components": ["main"]}])
    admin.add_tag("dest", parents=["base"])
    admin.add_tag("build", parents=["dest"])
    admin.add_target("t", "build", "dest")
    return admin


def builder(hub: RunningHub, name: str, tmp_path: Path) -> FakeBuilder:
    token = hub.admin.add_host(name, ["amd64"])["token"]
    return FakeBuilder(hub.client(token), tmp_path / name)


def test_long_poll_dispatch_is_fast(hub: RunningHub, tmp_path: Path) -> None:
    admin = setup(hub)
    fb = builder(hub, "b1", tmp_path)
    assert fb.claim(wait=0.2) is None  # nothing queued: 204 after the wait
    dsc = make_source(tmp_path, "orch-a", "1.0")
    got: dict[str, Any] = {}

    def poll() -> None:
        got["payload"] = fb.claim(wait=20)
        got["at"] = time.monotonic()

    t = threading.Thread(target=poll)
    t.start()
    time.sleep(0.5)  # the builder is waiting inside its long-poll
    submitted = time.monotonic()
    admin.submit("t", dsc)
    t.join(timeout=20)
    latency = got["at"] - submitted
    assert got["payload"]["build"] == "orch-a_1.0"
    assert latency < 1.0, f"dispatch took {latency:.3f} s"
    p = got["payload"]
    assert p["build_tag"] == "build" and p["tag_repo"]["path"] == "/repos/build"
    assert p["external_repos"] == [{"url": MIRROR, "suite": "trixie", "components": ["main"], "key": None}]
    assert p["dsc"] == "orch-a_1.0.dsc" and {f["name"] for f in p["files"]} == {"orch-a_1.0.dsc", "orch-a_1.0.tar.xz"}


def test_success_tags_and_publishes(hub: RunningHub, tmp_path: Path) -> None:
    admin = setup(hub)
    fb = builder(hub, "b1", tmp_path)
    sub = admin.submit("t", make_source(tmp_path, "orch-a", "1.0"))
    out = fb.step(0)
    assert out["state"] == "closed" and out["build_state"] == "complete"
    task = admin.wait_task(sub["task"]["id"], timeout=10)
    assert task["state"] == "closed"
    assert [c["method"] for c in task["children"]] == ["buildArch", "tag"]
    b = admin.build("orch-a_1.0")
    assert b["state"] == "complete" and b["packages"][0]["name"] == "orch-a"
    assert b["buildroots"][str(task["children"][0]["id"])] == [{"package": "dpkg", "version": "1.22",
                                                                "arch": "amd64"}]
    assert [x["ident"] for x in admin.list_tagged("dest")] == ["orch-a_1.0"]
    assert admin.latest_build("build", "orch-a")["tag"] == "dest"  # seen through inheritance
    for tag in ("dest", "build"):  # build inherits dest: both repos hold the package
        info = admin.wait_repo(tag, build="orch-a_1.0", timeout=30)
        assert info["state"] == "ready" and info["generation"] >= 1
        packages = httpx.get(f"{hub.url}/repos/{tag}/dists/{tag}/main/binary-amd64/Packages").text
        assert "Package: orch-a\n" in packages and "Filename: pool/main/o/orch-a/orch-a_1.0_all.deb" in packages
        assert "BEGIN PGP SIGNED MESSAGE" in httpx.get(f"{hub.url}/repos/{tag}/dists/{tag}/InRelease").text
        assert "BEGIN PGP PUBLIC KEY" in httpx.get(f"{hub.url}/repos/{tag}/key.asc").text
        sources = httpx.get(f"{hub.url}/repos/{tag}/dists/{tag}/main/source/Sources").text
        assert "Package: orch-a\n" in sources and "Directory: pool/main/o/orch-a" in sources
        deb = httpx.get(f"{hub.url}/repos/{tag}/pool/main/o/orch-a/orch-a_1.0_all.deb")
        assert deb.status_code == 200 and deb.content.startswith(b"!<arch>")
    base = admin.repo("base")
    assert base["builds"] == [] and base["packages"] == 0  # parents never see their children's builds
    # untagging republishes without it
    gen = admin.repo("dest")["generation"]
    admin.untag_build("dest", "orch-a_1.0")
    info = admin.wait_repo("dest", after=gen, timeout=30)
    assert info["builds"] == []
    assert "orch-a" not in httpx.get(f"{hub.url}/repos/dest/dists/dest/main/binary-amd64/Packages").text


def test_dead_builder_lease_expires_and_late_result_refused(make_hub: HubFactory, tmp_path: Path) -> None:
    hub = make_hub(lease_seconds=3.0)  # own hub: a short lease it waits out
    admin = setup(hub)
    dead, alive = builder(hub, "dead", tmp_path), builder(hub, "alive", tmp_path)
    admin.submit("t", make_source(tmp_path, "orch-a", "1.0"))
    first = dead.claim()
    assert first is not None
    started = time.monotonic()
    second = alive.claim(wait=20)  # the dead one never heartbeats: lease (3 s) expires, task requeued
    assert second is not None and second["task_id"] == first["task_id"]
    assert second["fence"] == first["fence"] + 1
    assert time.monotonic() - started < 3.0 + 4.0  # lease + reaper interval + a loaded machine
    with pytest.raises(HubError) as err:  # the late answer of the old attempt
        dead.finish(first, 0)
    assert err.value.status == 409 and "no longer current" in err.value.detail
    with pytest.raises(HubError):
        dead.client.heartbeat(first["task_id"], first["fence"])
    assert alive.finish(second, 0)["build_state"] == "complete"
    assert len(admin.builds()) == 1 and admin.build("orch-a_1.0")["state"] == "complete"
    kinds = [e["kind"] for e in admin.events() if e["object_type"] == "task"]
    assert kinds.count("task.claimed") == 2 and "task.requeued" in kinds


def test_heartbeats_keep_the_lease(make_hub: HubFactory, tmp_path: Path) -> None:
    hub = make_hub(lease_seconds=3.0)  # own hub: a short lease the heartbeats outlast
    admin = setup(hub)
    fb, other = builder(hub, "b1", tmp_path), builder(hub, "b2", tmp_path)
    admin.submit("t", make_source(tmp_path, "orch-a", "1.0"))
    p = fb.claim()
    assert p is not None
    for i in range(8):  # 4 s > the 3 s lease
        assert fb.client.heartbeat(p["task_id"], p["fence"], [f"line {i}"])["cancel"] is False
        time.sleep(0.5)
    assert other.claim(wait=0.5) is None
    assert admin.task(p["task_id"])["log_tail"].splitlines()[-1] == "line 7"
    assert fb.finish(p, 0)["build_state"] == "complete"


def test_infra_error_is_retried_elsewhere_then_bounded(hub: RunningHub, tmp_path: Path) -> None:
    admin = setup(hub)
    b1, b2 = builder(hub, "b1", tmp_path), builder(hub, "b2", tmp_path)
    b2.claim(wait=0)  # b2 is alive (heartbeat through its claim)
    admin.submit("t", make_source(tmp_path, "orch-a", "1.0"))
    p = b1.claim()
    assert p is not None
    out = b1.finish(p, 4, error="mirror unreachable")
    assert out["requeued"] is True and out["state"] == "free"
    assert b1.claim(wait=0.3) is None  # not given back to the host that failed while another one is alive
    p2 = b2.claim()
    assert p2 is not None and p2["attempt"] == 2
    assert b2.finish(p2, 4)["requeued"] is True
    p3 = b1.claim()  # every alive host failed once: any may try the last attempt
    assert p3 is not None and p3["attempt"] == 3
    out = b1.finish(p3, 4)
    assert out["state"] == "failed" and out["build_state"] == "failed"


def test_build_failure_logs_kept_and_resubmit(hub: RunningHub, tmp_path: Path) -> None:
    admin = setup(hub)
    fb = builder(hub, "b1", tmp_path)
    admin.submit("t", make_source(tmp_path, "orch-a", "1.0"))
    out = fb.step(1, error="dh_auto_build failed")
    assert out["state"] == "failed" and out["build_state"] == "failed"
    b = admin.build("orch-a_1.0")
    assert b["state"] == "failed"
    failed_task = next(t for t in b["tasks"] if t["method"] == "buildArch")
    assert failed_task["error"] == "dh_auto_build failed"
    log = admin.download(f"/tasks/{failed_task['id']}/files/build.log", tmp_path / "build.log")
    assert "exit 1" in log.read_text()
    # a failed build is not resubmitted by submitting again; resubmit does it
    again = admin.submit("t", make_source(tmp_path / "again", "orch-a", "1.0"))
    assert again["existing"] is True and again["build"]["state"] == "failed"
    re = admin.resubmit("orch-a_1.0")
    assert re["build"]["state"] == "building" and re["task"]["id"] != b["task_id"]
    assert fb.step(0)["build_state"] == "complete"
    with pytest.raises(HubError) as err:
        admin.resubmit("orch-a_1.0")
    assert err.value.status == 409 and "built once per hub" in err.value.detail


def test_cancel_running_build(hub: RunningHub, tmp_path: Path) -> None:
    admin = setup(hub)
    fb = builder(hub, "b1", tmp_path)
    admin.submit("t", make_source(tmp_path, "orch-a", "1.0"))
    p = fb.claim()
    assert p is not None
    out = admin.cancel_build("orch-a_1.0")
    assert p["task_id"] in out["canceled_tasks"]
    assert fb.client.heartbeat(p["task_id"], p["fence"])["cancel"] is True
    with pytest.raises(HubError) as err:
        fb.finish(p, 0)
    assert err.value.status == 409
    assert admin.build("orch-a_1.0")["state"] == "canceled"
    with pytest.raises(HubError) as err:
        admin.cancel_build("orch-a_1.0")
    assert err.value.status == 409


def test_dep_wait_released_when_repo_gains_the_package(hub: RunningHub, tmp_path: Path) -> None:
    admin = setup(hub)
    fb = builder(hub, "b1", tmp_path)
    admin.submit("t", make_source(tmp_path, "orch-app", "1.0", build_depends="liborch-dev (>= 1)"))
    missing = [{"relation": "liborch-dev (>= 1)", "packages": ["liborch-dev"]}]
    out = fb.step(3, missing=missing, error="unsatisfiable: liborch-dev (>= 1)")
    assert out["state"] == "dep-wait" and out["build_state"] == "dep-wait"
    b = admin.build("orch-app_1.0")
    assert b["state"] == "dep-wait"
    waiting = next(t for t in b["tasks"] if t["method"] == "buildArch")
    assert waiting["missing"] == missing
    # an unrelated package reaching the repo does not wake it
    admin.submit("t", make_source(tmp_path, "orch-other", "1.0"))
    assert fb.step(0)["build_state"] == "complete"
    admin.wait_repo("build", build="orch-other_1.0", timeout=30)
    assert admin.task(waiting["id"])["state"] == "dep-wait"
    # the library lands in dest (which build inherits): the waiting task goes back to the queue by itself
    admin.submit("t", make_source(tmp_path, "liborch", "1.0"))
    lib = fb.claim()
    assert lib is not None and lib["build"] == "liborch_1.0"
    fb.finish(lib, 0, provides="liborch-dev")
    p = fb.claim(wait=30)
    assert p is not None and p["task_id"] == waiting["id"]
    assert admin.build("orch-app_1.0")["state"] == "building"
    assert fb.finish(p, 0)["build_state"] == "complete"
    requeue = [e for e in admin.events() if e["kind"] == "task.requeued" and e["object_id"] == waiting["id"]]
    assert requeue and requeue[0]["data"]["provided"] == ["liborch-dev"]


def test_builder_hands_back_on_release(hub: RunningHub, tmp_path: Path) -> None:
    admin = setup(hub)
    b1, b2 = builder(hub, "b1", tmp_path), builder(hub, "b2", tmp_path)
    admin.submit("t", make_source(tmp_path, "orch-a", "1.0"))
    p = b1.claim()
    assert p is not None
    b1.client.release(p["task_id"], p["fence"], "SIGTERM")
    p2 = b2.claim(wait=2)
    assert p2 is not None and p2["task_id"] == p["task_id"] and p2["attempt"] == 1


def test_hub_restart_mid_build_loses_nothing(make_hub: HubFactory, tmp_path: Path) -> None:
    hub = make_hub(lease_seconds=30.0)  # own hubs: it stops the hub and starts another on its data
    admin = setup(hub)
    token = admin.add_host("b1", ["amd64"])["token"]
    sub = admin.submit("t", make_source(tmp_path, "orch-a", "1.0"))
    fb = FakeBuilder(hub.client(token), tmp_path / "fb")
    p = fb.claim()
    assert p is not None
    hub.stop()
    hub2 = make_hub(lease_seconds=30.0)
    assert hub2.admin_token == hub.admin_token  # the first token stays; no new one is made
    fb2 = FakeBuilder(hub2.client(token), tmp_path / "fb2")
    assert fb2.client.heartbeat(p["task_id"], p["fence"])["cancel"] is False
    assert fb2.finish(p, 0)["build_state"] == "complete"
    admin2 = hub2.admin
    assert admin2.wait_task(sub["task"]["id"], timeout=10)["state"] == "closed"
    assert admin2.wait_repo("dest", build="orch-a_1.0", timeout=30)["state"] == "ready"


def test_priorities_and_arch_matching(hub: RunningHub, tmp_path: Path) -> None:
    admin = hub.admin
    admin.add_tag("base", arches=["amd64", "arm64"],
                  external_repos=[{"url": MIRROR, "suite": "trixie", "components": ["main"]}])
    admin.add_target("t", "base", "base")
    admin.submit("t", make_source(tmp_path, "orch-low", "1.0", arch="any"), priority=50)
    admin.submit("t", make_source(tmp_path, "orch-high", "1.0", arch="any"), priority=5)
    arm = FakeBuilder(hub.client(admin.add_host("arm", ["arm64"])["token"]), tmp_path / "arm", ["arm64"])
    amd = FakeBuilder(hub.client(admin.add_host("amd", ["amd64"])["token"]), tmp_path / "amd", ["amd64"])
    order = []
    for fb in (amd, amd, arm, arm):
        p = fb.claim(wait=1)
        assert p is not None
        order.append((p["build"], p["arch"], p["build_what"]))
        fb.finish(p, 0)
    assert order == [("orch-high_1.0", "amd64", "arch"), ("orch-low_1.0", "amd64", "arch"),
                     ("orch-high_1.0", "arm64", "arch"), ("orch-low_1.0", "arm64", "arch")]
    assert admin.build("orch-high_1.0")["state"] == "complete"
