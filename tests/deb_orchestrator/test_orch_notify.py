"""``deb-orchestrator hub --workers 2`` on PostgreSQL: two real hub processes behind one port, and a
long-poll waiting in one of them woken by work queued through the other (LISTEN/NOTIFY)."""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from orch_hub import POSTGRES_URL, free_port, postgres_database

from deb_orchestrator.client import HubClient
from deb_orchestrator.hub.notify import PgBridge, Signal, psycopg_conninfo


@contextmanager
def hub_workers(data: Path, db: str, signing: Path, workers: int,
                procs: list[subprocess.Popen[bytes]] | None = None) -> Iterator[str]:
    data.mkdir(parents=True)
    shutil.copytree(signing, data / "gnupg", ignore=shutil.ignore_patterns("S.*", "*.lock"))
    port = free_port()
    log = (data.parent / "hub.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "deb_orchestrator.cli", "hub", "--data", str(data), "--db", db,
                             "--listen", f"127.0.0.1:{port}", "--workers", str(workers), "--log-level", "warning"],
                            stdout=log, stderr=subprocess.STDOUT)
    if procs is not None:
        procs.append(proc)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/api/v1/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, (data.parent / "hub.log").read_text()
            time.sleep(0.1)
        yield url
    finally:
        if proc.poll() is None:
            proc.terminate()
            assert proc.wait(30) == 0, (data.parent / "hub.log").read_text()
        log.close()


def needs_postgres() -> str:
    if not POSTGRES_URL:
        pytest.fail("this test needs PostgreSQL: set DEB_TEST_POSTGRES_URL (CI does)")
    return POSTGRES_URL


def client_on_worker(url: str, token: str, pid: int | None, other: bool) -> tuple[HubClient, int]:
    """A keep-alive client whose connection landed on worker ``pid`` (other=False) or on another one."""
    for _ in range(50):
        c = HubClient(url, token)
        got = int(c.get("/health")["pid"])
        if pid is None or (got != pid) == other:
            return c, got
        c.close()
    raise AssertionError("the kernel never spread 50 connections over both workers")


def test_long_poll_wakes_across_worker_processes(tmp_path: Path, signing_home: Path) -> None:
    needs_postgres()
    with postgres_database() as db, hub_workers(tmp_path / "data", db, signing_home, 2) as url:
        admin_token = (tmp_path / "data" / "admin.token").read_text().strip()
        seen = {int(httpx.get(f"{url}/api/v1/health").json()["pid"]) for _ in range(40)}
        assert len(seen) == 2, seen  # SO_REUSEPORT spreads new connections over both workers
        health = [httpx.get(f"{url}/api/v1/health").json() for _ in range(40)]
        assert {h["workers"] for h in health} == {2}
        assert len({h["pid"] for h in health if h["primary"]}) == 1  # one publisher and reaper
        token = HubClient(url, admin_token).add_host("b1", ["amd64"])["token"]
        builder, builder_pid = client_on_worker(url, token, None, False)
        admin, admin_pid = client_on_worker(url, admin_token, builder_pid, True)
        assert admin_pid != builder_pid
        latencies = []
        got: dict[str, float] = {}
        for _ in range(3):
            got.clear()

            def poll() -> None:
                p = builder.claim(["amd64"], wait=20)
                got["at"] = time.monotonic()
                assert p is not None
                builder.complete(p["task_id"], p["fence"], {"state": "success", "exit_code": 0})

            t = threading.Thread(target=poll)
            t.start()
            time.sleep(0.3)  # inside the long-poll; its own re-check would come only 1 s after it began
            queued = time.monotonic()
            admin.noop(1)
            t.join(20)
            latencies.append(got["at"] - queued)
        # without the notification the waiting worker would find the task ~0.7 s later
        assert statistics.median(latencies) < 0.4, latencies
        builder.close()
        admin.close()


def running(pid: int) -> bool:
    """The process exists and is not a zombie (an orphan's zombie waits for PID 1 to reap it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_workers_stop_when_the_supervisor_is_killed(tmp_path: Path, signing_home: Path) -> None:
    needs_postgres()
    procs: list[subprocess.Popen[bytes]] = []
    with postgres_database() as db, hub_workers(tmp_path / "data", db, signing_home, 2, procs) as url:
        pids = {int(httpx.get(f"{url}/api/v1/health").json()["pid"]) for _ in range(40)}
        assert len(pids) == 2 and procs[0].pid not in pids
        procs[0].kill()  # SIGKILL: the supervisor cannot stop its workers itself
        procs[0].wait()
        deadline = time.monotonic() + 20
        while any(running(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(running(pid) for pid in pids), "hub workers outlived their supervisor"
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{url}/api/v1/health", timeout=5)


def test_bridge_carries_signals_between_processes_and_ignores_its_own() -> None:
    url = needs_postgres()
    a_work, b_work = Signal(), Signal()
    a, b = PgBridge(url), PgBridge(url)
    a.attach("test_work", a_work)
    b.attach("test_work", b_work)
    a.start()
    b.start()
    try:
        assert a.listening.wait(10) and b.listening.wait(10)
        before_a, before_b = a_work.generation, b_work.generation
        a_work.notify()
        deadline = time.monotonic() + 5
        while b_work.generation == before_b and time.monotonic() < deadline:
            time.sleep(0.01)
        assert b_work.generation == before_b + 1 and b.received == 1
        time.sleep(0.3)
        assert a_work.generation == before_a + 1 and a.received == 0  # its own NOTIFY came back and was ignored
    finally:
        a.stop()
        b.stop()


def test_conninfo_and_workers_on_sqlite_refused(tmp_path: Path) -> None:
    assert psycopg_conninfo("postgresql+psycopg://u:p@h:5/db") == "postgresql://u:p@h:5/db"
    with pytest.raises(ValueError, match="not a PostgreSQL URL"):
        psycopg_conninfo("sqlite:///x.db")
    out = subprocess.run([sys.executable, "-m", "deb_orchestrator.cli", "hub", "--data", str(tmp_path / "d"),
                          "--workers", "2", "--listen", f"127.0.0.1:{free_port()}"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 2 and "--workers 2 needs PostgreSQL" in out.stderr, out.stderr
