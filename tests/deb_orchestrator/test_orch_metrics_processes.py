"""Metrics of real processes: ``deb-orchestrator hub --workers 2`` (PostgreSQL) answers for both workers
whichever one is scraped, and starts counting afresh after a restart; ``deb-orchestrator builder
--metrics-listen`` serves the builder's own figures while it runs no-op tasks from a real hub."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from orch_hub import CLI, POSTGRES_URL, HubProcess, postgres_database, stop_builder
from orch_metrics import Samples, check_metrics, fetch, parse, scrape, value

from deb_orchestrator.client import HubClient
from httpserve import free_port

pytestmark = pytest.mark.integration
HEALTH = {"method": "GET", "handler": "/api/v1/health", "code": "200"}


def hub_process(data: Path, signing: Path, *args: str) -> HubProcess:
    if not (data / "gnupg").exists():
        shutil.copytree(signing, data / "gnupg", ignore=shutil.ignore_patterns("S.*", "*.lock"))
    return HubProcess(data, *args, "--log-level", "warning")


def run_noops(hub: HubProcess, builder_token: str, count: int) -> None:
    """Queue ``count`` no-op tasks and claim and complete each on a new connection, so that the kernel
    spreads the requests over the hub's workers."""
    with HubClient(hub.url, hub.token) as admin:
        admin.noop(count)
    for _ in range(count):
        with HubClient(hub.url, builder_token) as b:
            p = b.claim(["amd64"], wait=10)
            assert p is not None
        with HubClient(hub.url, builder_token) as b:
            b.complete(p["task_id"], p["fence"], {"state": "success", "exit_code": 0})


def test_workers_report_the_whole_hub(tmp_path: Path, signing_home: Path) -> None:
    if not POSTGRES_URL:
        pytest.fail("this test needs PostgreSQL: set DEB_TEST_POSTGRES_URL (CI does)")
    data = tmp_path / "data"
    with postgres_database() as db:
        args = ("--db", db, "--workers", "2", "--metrics-token-required")
        hub = hub_process(data, signing_home, *args)
        try:
            builder_token = HubClient(hub.url, hub.token).add_host("b1", ["amd64"])["token"]
            base = value(scrape(hub.url, hub.token), "deb_orchestrator_http_requests_total", **HEALTH)
            pids = [httpx.get(f"{hub.url}/api/v1/health").json()["pid"] for _ in range(40)]
            assert len(set(pids)) == 2, "the kernel did not spread 40 connections over both workers"
            run_noops(hub, builder_token, 6)
            assert fetch(hub.url).status_code == 401  # --metrics-token-required reached the workers
            for _ in range(10):  # new connections: both workers answer scrapes; each answer is the sum
                m = scrape(hub.url, hub.token)
                assert value(m, "deb_orchestrator_http_requests_total", **HEALTH) == base + 40
                assert value(m, "deb_orchestrator_task_wait_seconds_count", arch="amd64") == 6
                assert value(m, "deb_orchestrator_task_duration_seconds_count", result="success") == 6
                assert value(m, "deb_orchestrator_tasks", state="closed", arch="amd64") == 6
            assert sorted(p.name for p in (data / "metrics").glob("*.db"))  # the workers' files are there
        finally:
            hub.stop()
        hub = hub_process(data, signing_home, *args)  # a restart: counters start from zero, gauges do not
        try:
            m = scrape(hub.url, hub.token)
            assert value(m, "deb_orchestrator_http_requests_total", **HEALTH) < 40  # only the start-up probes
            assert ("deb_orchestrator_task_duration_seconds_count", frozenset({("result", "success")})) not in m
            assert value(m, "deb_orchestrator_tasks", state="closed", arch="amd64") == 6
        finally:
            hub.stop()


def test_builder_serves_its_own_metrics(tmp_path: Path, signing_home: Path) -> None:
    hub = hub_process(tmp_path / "data", signing_home)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        token = HubClient(hub.url, hub.token).add_host("b1", ["amd64"])["token"]
        port = free_port()
        url = f"http://127.0.0.1:{port}/metrics"

        def builder(name: str) -> subprocess.Popen[bytes]:
            proc = subprocess.Popen([*CLI, "builder", "--hub", hub.url, "--metrics-listen", f"127.0.0.1:{port}",
                                     "--work-dir", str(tmp_path / "work")],
                                    env={**os.environ, "DEB_ORCHESTRATOR_TOKEN": token},
                                    stdout=(tmp_path / f"{name}.log").open("w"), stderr=subprocess.STDOUT)
            procs.append(proc)
            return proc

        first = builder("b1")
        m = wait_for(url, lambda m: m.get(("deb_orchestrator_builder_state",
                                           frozenset({("deb_orchestrator_builder_state", "idle")}))) == 1,
                     first, tmp_path / "b1.log")
        assert value(m, "deb_orchestrator_builder_slots") == 1
        assert value(m, "deb_orchestrator_builder_builds_running") == 0
        assert value(m, "deb_orchestrator_builder_hub_last_contact_seconds") < 30
        second = builder("b1-again")  # the port is taken: a clear refusal, not a traceback
        assert second.wait(60) == 2
        assert "--metrics-listen 127.0.0.1:" in (tmp_path / "b1-again.log").read_text()
        HubClient(hub.url, hub.token).noop(3)  # the real builder runs them (no deb-mock for a no-op)
        m = wait_for(url, lambda m: m.get(("deb_orchestrator_builder_builds_total",
                                           frozenset({("result", "success")}))) == 3, first, tmp_path / "b1.log")
        assert value(m, "deb_orchestrator_builder_build_duration_seconds_count", result="success") == 3
        assert value(m, "deb_orchestrator_builder_hub_errors_total") == 0
        check_metrics(httpx.get(url).text)
    finally:
        for proc in procs:
            stop_builder(proc)
        hub.stop()
    assert procs[0].returncode == 0


def wait_for(url: str, ok: Callable[[Samples], bool], proc: subprocess.Popen[bytes], log: Path,
             timeout: float = 60) -> Samples:
    """Scrape ``url`` until ``ok(samples)`` holds."""
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, log.read_text()[-3000:]
        try:
            m = parse(httpx.get(url, timeout=5).text)
            if ok(m):
                return m
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.2)
