"""The issue's failover case: the builder running the build a compose waits for is killed (kill -9 of its
whole process group: no hand-back, no more heartbeats); the hub's lease expires, a second builder takes the
task over and the compose's build phase still finishes, with the build and task IDs of the finished build."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest
from e2e_loop import LoopHub, phase_context

from deb_bootc_compose.phases import build as build_phase
from deb_orchestrator.client import HubClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "deb_orchestrator"))
from orch_helpers import make_source

pytestmark = pytest.mark.integration


def test_compose_finishes_after_its_builder_is_killed(tmp_path: Path, test_cache: Path, mirror: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    hub = LoopHub(tmp_path / "hub-data", lease=6.0)
    try:
        hub.setup_trixie(mirror)
        monkeypatch.setenv("DEB_ORCHESTRATOR_TOKEN", hub.token)
        monkeypatch.setattr(build_phase, "POLL_SECONDS", 0.5)
        (tmp_path / "src").mkdir()
        dsc = make_source(tmp_path / "src", "e2e-failover", "1.0", build_depends="debhelper-compat (= 13)")
        cache = test_cache / "deb-mock"
        first = hub.start_builder("b1", cache, tmp_path)
        ctx, messages = phase_context(tmp_path, hub.url, [dsc], target="trixie", tag="trixie-dest", mirror=mirror)
        errors: list[BaseException] = []

        def run_phase() -> None:
            try:
                build_phase.BuildPhase(ctx).run()
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=run_phase, daemon=True)
        thread.start()
        with HubClient(hub.url) as client:
            deadline = time.monotonic() + 600
            while True:  # b1 runs it and deb-mock is working (the live log tail grows)
                tasks = [t for t in client.tasks() if t["method"] == "buildArch"]
                if tasks and tasks[0]["state"] == "open" and tasks[0]["host"] == "b1" \
                        and client.task(tasks[0]["id"])["log_tail"]:
                    break
                assert not errors, errors
                assert time.monotonic() < deadline, "b1 never started the build"
                time.sleep(0.5)
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
            hub.start_builder("b2", cache, tmp_path)
            thread.join(900)
            assert not thread.is_alive(), "the build phase did not finish"
            assert not errors, errors
            build = client.build("e2e-failover_1.0")
            arch_task = client.task(tasks[0]["id"])
    finally:
        hub.stop()
    assert build["state"] == "complete"
    assert arch_task["host"] == "b2" and arch_task["attempts"] == 2
    record = ctx.extra[build_phase.EXTRA_KEY]["e2e-failover_1.0"]
    assert record["build_id"] == build["id"] and record["task_id"] == build["task_id"]
    assert any("on b1" in m for m in messages) and any("on b2 (attempt 2)" in m for m in messages), messages
    assert any("in trixie-dest" in m for m in messages)
