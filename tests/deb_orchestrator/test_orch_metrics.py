"""GET /metrics on a real hub (uvicorn, real HTTP, SQLite and PostgreSQL): tasks submitted, claimed and
completed by a builder speaking the real protocol, the figures read back from a scrape."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import httpx
import pytest
from orch_helpers import FakeBuilder, make_source
from orch_hub import HubFactory, RunningHub
from orch_metrics import check_metrics, fetch, grown, parse, scrape, value

from deb_orchestrator.hub.dbgauges import builder_state

MIRROR = "http://deb.debian.org/debian"


def setup(hub: RunningHub) -> None:
    admin = hub.admin
    admin.add_tag("base", external_repos=[{"url": MIRROR, "suite": "trixie", "components": ["main"]}])
    admin.add_tag("dest", parents=["base"])
    admin.add_target("t", "base", "dest")


def test_queue_builders_tasks_and_repos(hub: RunningHub, tmp_path: Path) -> None:
    base = scrape(hub.url)  # counters: what this test adds to them; gauges: the state, read as it is
    setup(hub)
    admin = hub.admin
    fb = FakeBuilder(hub.client(admin.add_host("b1", ["amd64"])["token"]), tmp_path / "b1")
    admin.add_host("b2", ["amd64"])
    admin.edit_host("b2", enabled=False)
    admin.add_host("b3", ["amd64"])  # registered, never heard from: lost
    admin.submit("t", make_source(tmp_path, "orch-good", "1.0"))
    admin.submit("t", make_source(tmp_path, "orch-bad", "1.0"))
    m = scrape(hub.url)
    assert value(m, "deb_orchestrator_tasks", state="free", arch="amd64") == 2
    assert value(m, "deb_orchestrator_tasks", state="open", arch="amd64") == 0
    assert value(m, "deb_orchestrator_task_oldest_free_seconds", arch="amd64") > 0
    assert value(m, "deb_orchestrator_builders", state="lost") == 2  # b1 has not claimed yet, b3 never will
    assert value(m, "deb_orchestrator_builders", state="disabled") == 1
    assert value(m, "deb_orchestrator_builders", state="ready") == 0
    time.sleep(1.0)  # the tasks wait at least this long before a builder starts them

    first = fb.claim()
    assert first is not None and first["source"] == "orch-good"
    m = scrape(hub.url)
    assert value(m, "deb_orchestrator_tasks", state="free", arch="amd64") == 1
    assert value(m, "deb_orchestrator_tasks", state="open", arch="amd64") == 1
    assert value(m, "deb_orchestrator_builders", state="busy") == 1
    assert value(m, "deb_orchestrator_builders", state="disabled") == 1
    assert value(m, "deb_orchestrator_builders", state="lost") == 1
    assert value(m, "deb_orchestrator_builder_running_tasks", host="b1") == 1
    assert value(m, "deb_orchestrator_builder_enabled", host="b2") == 0
    assert value(m, "deb_orchestrator_builder_last_heartbeat_seconds", host="b1") < 5
    assert ("deb_orchestrator_builder_last_heartbeat_seconds", frozenset({("host", "b3")})) not in m
    assert grown(m, base, "deb_orchestrator_task_wait_seconds_count", arch="amd64") == 1
    assert grown(m, base, "deb_orchestrator_task_wait_seconds_sum", arch="amd64") >= 1.0
    assert grown(m, base, "deb_orchestrator_task_wait_seconds_bucket", arch="amd64", le="1.0") == 0  # waited > 1 s
    assert grown(m, base, "deb_orchestrator_task_wait_seconds_bucket", arch="amd64", le="5.0") == 1

    time.sleep(0.5)  # the builder works this long on it
    assert fb.finish(first, 0)["state"] == "closed"
    assert fb.step(1)["state"] == "failed"
    admin.wait_repo("dest", build="orch-good_1.0", timeout=30)
    m = scrape(hub.url)
    assert value(m, "deb_orchestrator_tasks", state="closed", arch="amd64") == 1
    assert value(m, "deb_orchestrator_tasks", state="failed", arch="amd64") == 1
    assert value(m, "deb_orchestrator_tasks", state="free", arch="amd64") == 0
    assert value(m, "deb_orchestrator_task_oldest_free_seconds", arch="amd64") == 0
    assert value(m, "deb_orchestrator_builders", state="ready") == 1
    assert grown(m, base, "deb_orchestrator_task_wait_seconds_count", arch="amd64") == 2
    assert grown(m, base, "deb_orchestrator_task_duration_seconds_count", result="success") == 1
    assert grown(m, base, "deb_orchestrator_task_duration_seconds_sum", result="success") >= 0.5
    assert grown(m, base, "deb_orchestrator_task_duration_seconds_count", result="failed") == 1
    assert grown(m, base, "deb_orchestrator_repo_publish_seconds_count", result="success") >= 1
    assert value(m, "deb_orchestrator_repos", state="ready") >= 1
    assert value(m, "deb_orchestrator_repos", state="failed") == 0
    assert value(m, "deb_orchestrator_data_filesystem_avail_bytes") > 0
    # requests by route template, method and status: the two submissions, the long-poll claims
    requests = "deb_orchestrator_http_requests_total"
    assert grown(m, base, requests, method="POST", handler="/api/v1/builds/upload", code="201") == 2
    assert grown(m, base, requests, method="POST", handler="/api/v1/tasks/claim", code="200") == 2
    # the scrapes before this one, the first included (a request is counted once it is answered)
    assert grown(m, base, requests, method="GET", handler="/metrics", code="200") == 3
    httpx.get(f"{hub.url}/no/such/page")
    assert grown(scrape(hub.url), base, requests, method="GET", handler="unmatched", code="404") == 1


def test_failed_publication_is_counted(hub: RunningHub, tmp_path: Path) -> None:
    base = scrape(hub.url)
    setup(hub)
    fb = FakeBuilder(hub.client(hub.admin.add_host("b1", ["amd64"])["token"]), tmp_path / "b1")
    hub.admin.wait_repo("dest", timeout=30)
    pool = hub.settings.repos_dir / "dest" / "pool"
    shutil.rmtree(pool, ignore_errors=True)
    pool.write_text("not a directory\n")  # the publisher cannot put the package into the pool
    hub.admin.submit("t", make_source(tmp_path, "orch-a", "1.0"))
    fb.step(0)
    deadline = time.monotonic() + 30
    while hub.admin.repo("dest").state != "failed":
        assert time.monotonic() < deadline, hub.admin.repo("dest")
        time.sleep(0.1)
    m = scrape(hub.url)
    assert value(m, "deb_orchestrator_repos", state="failed") == 1
    assert grown(m, base, "deb_orchestrator_repo_publish_seconds_count", result="failed") >= 1
    pool.unlink()  # repaired: the next publication succeeds and the gauge follows
    hub.admin.regen_repo("dest")
    hub.admin.wait_repo("dest", build="orch-a_1.0", timeout=30)
    assert value(scrape(hub.url), "deb_orchestrator_repos", state="failed") == 0


def test_token_required(make_hub: HubFactory) -> None:
    hub = make_hub(metrics_token_required=True)
    for headers in ({}, {"Authorization": "Bearer dob_not-a-token"}):
        r = httpx.get(f"{hub.url}/metrics", headers=headers)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", r.text
        assert "deb_orchestrator" not in r.text
    builder_token = hub.admin.add_host("b1", ["amd64"])["token"]  # any valid token may scrape
    m = scrape(hub.url, builder_token)
    assert value(m, "deb_orchestrator_builders", state="lost") == 1
    # the refusals were counted too, not only the answered scrapes
    assert value(m, "deb_orchestrator_http_requests_total", method="GET", handler="/metrics", code="401") == 2


def test_anonymous_by_default(hub: RunningHub) -> None:
    r = fetch(hub.url)
    assert r.status_code == 200 and "deb_orchestrator_builders" in r.text


@pytest.mark.integration
def test_promtool_accepts_the_hub_output(hub: RunningHub, tmp_path: Path) -> None:
    setup(hub)
    fb = FakeBuilder(hub.client(hub.admin.add_host("b1", ["amd64"])["token"]), tmp_path / "b1")
    hub.admin.submit("t", make_source(tmp_path, "orch-a", "1.0"))
    fb.step(0)
    hub.admin.wait_repo("dest", build="orch-a_1.0", timeout=30)
    text = fetch(hub.url).text
    assert parse(text)  # every family present: histograms, counters, the database's gauges
    check_metrics(text)


def test_builder_states() -> None:
    now, lease = 1000.0, 45.0
    assert builder_state(False, now, 0, now, lease) == "disabled"
    assert builder_state(False, None, 0, now, lease) == "disabled"
    assert builder_state(True, None, 0, now, lease) == "lost"
    assert builder_state(True, now - 46, 1, now, lease) == "lost"
    assert builder_state(True, now - 44, 0, now, lease) == "ready"
    assert builder_state(True, now - 1, 2, now, lease) == "busy"
