"""The builder protocol's hot path over real HTTP on SQLite and PostgreSQL: ``complete-and-claim``
(fencing, no claim after a refused completion, long-poll), the Core claim's priority/arch/exclusion
rules, and the builder daemon using the combined request."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from orch_hub import RunningHub

from deb_orchestrator.builder.daemon import Builder, BuilderConfig
from deb_orchestrator.client import HubClient, HubError
from deb_orchestrator.wire import CompleteAndClaimOut

OK = {"state": "success", "exit_code": 0}


def host(hub: RunningHub, name: str, arches: list[str] | None = None) -> HubClient:
    return hub.client(hub.admin.add_host(name, arches or ["amd64"])["token"])


def test_complete_and_claim_hands_over_the_next_task(hub: RunningHub) -> None:
    b1 = host(hub, "b1")
    first, second = hub.admin.noop(2)
    p = b1.claim(["amd64"], wait=0)
    assert p is not None and p["task_id"] == first
    assert b1.heartbeat(first, p["fence"])["cancel"] is False
    out = b1.complete_and_claim(first, p["fence"], OK, ["amd64"])
    assert out["completed"] == {"task": first, "state": "closed", "requeued": False, "build_state": None}
    nxt = out["next"]
    assert nxt["task_id"] == second and nxt["fence"] == 1 and nxt["method"] == "noop" and nxt["attempt"] == 1
    assert hub.admin.task(second)["host"] == "b1" and hub.admin.task(second)["state"] == "open"
    # nothing left: "next" is null after the wait
    started = time.monotonic()
    out = b1.complete_and_claim(second, nxt["fence"], OK, ["amd64"], wait=0.5)
    assert out["next"] is None and time.monotonic() - started >= 0.4
    kinds = [(e["kind"], e["object_id"]) for e in hub.admin.events() if e["object_type"] == "task"]
    assert kinds == [("task.claimed", first), ("task.closed", first), ("task.claimed", second),
                     ("task.closed", second)]


def test_complete_and_claim_refuses_a_stale_fence_and_claims_nothing(hub: RunningHub) -> None:
    b1, b2 = host(hub, "b1"), host(hub, "b2")
    (task,) = hub.admin.noop(1)
    old = b1.claim(["amd64"], wait=0)
    assert old is not None
    b1.release(task, old["fence"], "test: hand it back")
    new = b2.claim(["amd64"], wait=0)
    assert new is not None and new["task_id"] == task and new["fence"] == old["fence"] + 1
    (waiting,) = hub.admin.noop(1)
    with pytest.raises(HubError) as err:  # b1's late answer for the attempt it gave up
        b1.complete_and_claim(task, old["fence"], OK, ["amd64"])
    assert err.value.status == 409 and "no longer current" in err.value.detail
    assert hub.admin.task(waiting)["state"] == "free"  # the refused request claimed nothing
    assert hub.admin.task(task)["state"] == "open" and hub.admin.task(task)["host"] == "b2"
    with pytest.raises(HubError) as err:  # right fence, wrong host
        b1.complete_and_claim(task, new["fence"], OK, ["amd64"])
    assert err.value.status == 409
    out = b2.complete_and_claim(task, new["fence"], OK, ["amd64"])
    assert out["completed"]["state"] == "closed" and out["next"]["task_id"] == waiting
    with pytest.raises(HubError) as err:  # completing twice
        b2.complete_and_claim(task, new["fence"], OK, ["amd64"])
    assert err.value.status == 409
    with pytest.raises(HubError) as err:
        b2.complete_and_claim(999_999, 1, OK, ["amd64"])
    assert err.value.status == 404


def test_complete_and_claim_long_polls_for_new_work(hub: RunningHub) -> None:
    b1 = host(hub, "b1")
    (task,) = hub.admin.noop(1)
    p = b1.claim(["amd64"], wait=0)
    assert p is not None
    got: dict[str, object] = {}

    def finish() -> None:
        got["answer"] = b1.complete_and_claim(task, p["fence"], OK, ["amd64"], wait=20)
        got["at"] = time.monotonic()

    t = threading.Thread(target=finish)
    t.start()
    time.sleep(0.5)  # the completion is recorded; the request now waits for work
    assert hub.admin.task(task)["state"] == "closed"
    queued = time.monotonic()
    (later,) = hub.admin.noop(1)
    t.join(20)
    answer = got["answer"]
    assert isinstance(answer, CompleteAndClaimOut) and answer.next is not None and answer.next.task_id == later
    assert float(got["at"]) - queued < 1.0  # type: ignore[arg-type]


def test_claim_order_arches_capacity_and_excluded_hosts(hub: RunningHub) -> None:
    admin = hub.admin
    arm, amd, other = host(hub, "arm", ["arm64"]), host(hub, "amd", ["amd64"]), host(hub, "other")
    low = admin.noop(1, priority=50)[0]
    high = admin.noop(1, priority=5)[0]
    arm_task = admin.noop(1, arch="arm64")[0]
    assert amd.claim(["arm64"], wait=0) is None  # an arch the host does not have
    p = amd.claim(["amd64"], wait=0)
    assert p is not None and p["task_id"] == high  # lower priority value first
    assert amd.claim(["amd64"], wait=0) is None  # capacity 1: the running task fills it
    q = arm.claim([], wait=0)
    assert q is not None and q["task_id"] == arm_task and q["arch"] == "arm64"
    # an infrastructure error keeps the task away from the host that failed while another one is alive
    assert other.claim(["amd64"], wait=0) is not None  # "other" takes "low" and is alive
    other_task = low
    out = amd.complete_and_claim(high, p["fence"], {"state": "error", "exit_code": 4, "error": "disk full"},
                                 ["amd64"])
    assert out["completed"] == {"task": high, "state": "free", "requeued": True, "build_state": None}
    assert out["next"] is None  # "high" is free again but excluded for amd while "other" can run it
    r = other.complete_and_claim(other_task, 1, OK, ["amd64"])
    assert r["next"]["task_id"] == high and r["next"]["attempt"] == 2


def test_builder_daemon_uses_complete_and_claim(hub: RunningHub, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    token = hub.admin.add_host("b1", ["amd64"])["token"]
    ids = hub.admin.noop(5)
    calls: list[int] = []
    real = HubClient.complete_and_claim

    def counting(self: HubClient, task_id: int, *args: object, **kwargs: object) -> CompleteAndClaimOut:
        calls.append(task_id)
        return real(self, task_id, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(HubClient, "complete_and_claim", counting)
    builder = Builder(BuilderConfig(hub=hub.url, token=token, capacity=1, idle_exit=1.0, claim_wait=0.5,
                                    work_dir=tmp_path / "work"))
    assert builder._loop() == 0
    assert builder.done == 5 and calls == ids
    assert [hub.admin.task(i)["state"] for i in ids] == ["closed"] * 5
    claimed = [e["object_id"] for e in hub.admin.events() if e["kind"] == "task.claimed"]
    assert claimed == ids  # each task claimed once, in order
