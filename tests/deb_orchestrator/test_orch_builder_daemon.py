"""The builder daemon against a real hub, with its build function injected (the real deb-mock runs in
test_orch_builder_integration.py): capacity, uploads, noop tasks, SIGTERM hand-back, cancel from the hub."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

import pytest
from orch_helpers import built, make_source
from orch_hub import HubFactory, RunningHub

from deb_mock.request import BuildRequest, BuildResult
from deb_orchestrator.builder.daemon import Builder, BuilderConfig
from debarchive.dsc import parse_dsc
from debsandbox.commands import CommandCancelled, run

MIRROR = "http://deb.debian.org/debian"


def setup(hub: RunningHub) -> str:
    admin = hub.admin
    admin.add_tag("base", external_repos=[{"url": MIRROR, "suite": "trixie", "components": ["main"]}])
    admin.add_tag("build", parents=["base"])
    admin.add_target("t", "build", "base")
    return str(admin.add_host("b1", ["amd64"], capacity=2)["token"])


def dpkg_deb_build(request: BuildRequest) -> BuildResult:
    """Builds the binary package a native test source names, with dpkg-deb, and writes result.json."""
    pkg = parse_dsc(Path(request.source))
    assert request.mirror == MIRROR and request.suite == "trixie"
    assert [s.suite for s in request.extra_sources] == ["build"] and request.extra_sources[0].key
    if request.on_log_line:
        request.on_log_line(f"building {pkg.ident}")
    return built(request)


def run_builder(cfg: BuilderConfig) -> tuple[Builder, threading.Thread, list[int]]:
    builder = Builder(cfg)
    codes: list[int] = []
    t = threading.Thread(target=lambda: codes.append(builder._loop()))
    t.start()
    return builder, t, codes


def test_builds_uploads_and_noop(hub: RunningHub, tmp_path: Path) -> None:
    token = setup(hub)
    admin = hub.admin
    for name in ("orch-a", "orch-b"):
        admin.submit("t", make_source(tmp_path, name, "1.0"))
    admin.noop(3)
    cfg = BuilderConfig(hub=hub.url, token=token, capacity=2, work_dir=tmp_path / "work", idle_exit=1.0,
                        claim_wait=0.5, build_fn=dpkg_deb_build)
    _, t, codes = run_builder(cfg)
    t.join(timeout=120)
    assert codes == [0]
    for name in ("orch-a_1.0", "orch-b_1.0"):
        b = admin.build(name)
        assert b["state"] == "complete"
        assert {f["name"] for f in b["files"] if f["task_id"]} == {f"{name}_all.deb", "build.log", "result.json"}
        task = admin.task(next(x["id"] for x in b["tasks"] if x["method"] == "buildArch"))
        assert task["result"]["exit_code"] == 0 and task["host"] == "b1"
    assert all(t["state"] == "closed" for t in admin.tasks() if t["method"] == "noop")
    assert not list((tmp_path / "work").iterdir())  # work directories are cleaned up


def test_sigterm_hands_back_running_task(hub: RunningHub, tmp_path: Path) -> None:
    token = setup(hub)
    admin = hub.admin
    admin.submit("t", make_source(tmp_path, "orch-slow", "1.0"))
    started = threading.Event()

    def slow_build(request: BuildRequest) -> BuildResult:
        started.set()
        try:
            run(["sleep", "60"], cancel=request.cancel)
        except CommandCancelled:
            return BuildResult(state="error", exit_code=130, source={}, arch=request.arch, error="interrupted")
        raise AssertionError("the build was not cancelled")

    builder, t, codes = run_builder(BuilderConfig(hub=hub.url, token=token, work_dir=tmp_path / "w",
                                                  claim_wait=0.5, build_fn=slow_build))
    assert started.wait(30)
    task = next(x for x in admin.tasks() if x["method"] == "buildArch")
    assert task["state"] == "open"
    t0 = time.monotonic()
    builder._on_signal(15, None)  # what SIGTERM does
    t.join(timeout=60)
    assert codes == [0] and time.monotonic() - t0 < 20
    after = admin.task(task["id"])
    assert after["state"] == "free" and after["host"] is None  # handed back at once, not after the lease
    assert any(e["kind"] == "task.released" for e in admin.events())


def test_cancel_on_hub_stops_the_build(make_hub: HubFactory, tmp_path: Path) -> None:
    hub = make_hub()  # its own hub: on the shared one the cancel once missed its heartbeat (CI, SQLite)
    token = setup(hub)
    admin = hub.admin
    admin.submit("t", make_source(tmp_path, "orch-slow", "1.0"))
    started, cancelled = threading.Event(), threading.Event()

    def slow_build(request: BuildRequest) -> BuildResult:
        started.set()
        try:
            run(["sleep", "60"], cancel=request.cancel)
        except CommandCancelled:
            cancelled.set()
            return BuildResult(state="error", exit_code=130, source={}, arch=request.arch, error="interrupted")
        raise AssertionError("the build was not cancelled")

    _builder, t, codes = run_builder(BuilderConfig(hub=hub.url, token=token, work_dir=tmp_path / "w",
                                                  claim_wait=0.5, once=True, build_fn=slow_build))
    # the build must be running: a cancel that arrives while the builder still fetches the source ends the task
    # before the build starts (CI caught that: the task was "open" but nothing ran yet)
    assert started.wait(30)
    admin.cancel_build("orch-slow_1.0")
    assert cancelled.wait(30)  # the next heartbeat (0.5 s here) carries the cancel
    t.join(timeout=60)
    assert codes == [0]
    assert admin.build("orch-slow_1.0")["state"] == "canceled"
    task = next(x for x in admin.tasks() if x["method"] == "buildArch")
    assert task["state"] == "canceled" and json.dumps(admin.task(task["id"])["result"]) == "null"


def test_finished_build_survives_a_hub_restart_at_report_time(make_hub: HubFactory, tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    """The hub goes away just as the build finishes: the builder keeps its result, retries the upload and
    the completion, and the hub (back on the same port and data) takes them — one attempt, no rebuild."""
    first = make_hub()  # own hubs: it stops the hub and starts another on its data and port
    token = setup(first)
    first.admin.submit("t", make_source(tmp_path, "orch-restart", "1.0"))
    port = int(first.url.rsplit(":", 1)[1])
    back: list[RunningHub] = []
    restarts: list[threading.Timer] = []

    def build_then_lose_the_hub(request: BuildRequest) -> BuildResult:
        result = dpkg_deb_build(request)
        first.stop()
        restarts.append(threading.Timer(3.0, lambda: back.append(make_hub(port=port))))
        restarts[0].start()
        return result

    caplog.set_level(logging.WARNING, logger="deb_orchestrator.builder")
    _builder, t, codes = run_builder(BuilderConfig(hub=first.url, token=token, work_dir=tmp_path / "w",
                                                  claim_wait=0.5, once=True, build_fn=build_then_lose_the_hub))
    t.join(timeout=120)
    # the builder may finish on the new hub before make_hub() has returned to the timer's thread
    for timer in restarts:
        timer.join(timeout=120)
    assert codes == [0] and back
    admin = back[0].admin
    build = admin.build("orch-restart_1.0")
    assert build["state"] == "complete"
    task = admin.task(next(x["id"] for x in build["tasks"] if x["method"] == "buildArch"))
    assert task["state"] == "closed" and task["attempts"] == 1
    assert "orch-restart_1.0_all.deb" in {f["name"] for f in build["files"]}
    assert any("trying again" in r.getMessage() for r in caplog.records)
