"""Running a real hub for tests: uvicorn in a thread, real HTTP, SQLite or a fresh PostgreSQL database."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn
from sqlalchemy import create_engine, text

from deb_orchestrator.client import HubClient
from deb_orchestrator.hub.app import create_app
from deb_orchestrator.hub.config import HubSettings
from deb_orchestrator.hub.service import Hub
from httpserve import free_port

POSTGRES_URL = os.environ.get("DEB_TEST_POSTGRES_URL")
CLI = [sys.executable, "-m", "deb_orchestrator.cli"]
DATABASES = ["sqlite", *(["postgresql"] if POSTGRES_URL else [])]


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database; dropped afterwards."""
    assert POSTGRES_URL
    name = f"orch_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    base, _, _ = POSTGRES_URL.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def database_url(kind: str, data: Path) -> Iterator[str]:
    if kind == "postgresql":
        with postgres_database() as url:
            yield url
    else:
        yield f"sqlite:///{data / 'hub.db'}"


Listing = dict[str, tuple[str, int]]  # relative path -> (kind d/f/l, permission bits)


def data_listing(data: Path) -> Listing:
    """What is in a hub's data directory; the signing key's GnuPG home is one entry (its files are gpg's)."""
    out: Listing = {}
    for root, dirs, files in os.walk(data):
        for name in [*dirs, *files]:
            path = Path(root) / name
            try:
                st = path.lstat()
            except FileNotFoundError:  # removed meanwhile (a publication under way)
                continue
            kind = "l" if stat.S_ISLNK(st.st_mode) else "d" if stat.S_ISDIR(st.st_mode) else "f"
            out[str(path.relative_to(data))] = (kind, stat.S_IMODE(st.st_mode))
        if Path(root) == data and "gnupg" in dirs:
            dirs.remove("gnupg")
    return out


@dataclass
class RunningHub:
    url: str
    settings: HubSettings
    hub: Hub
    admin_token: str
    server: uvicorn.Server
    thread: threading.Thread
    fresh: Listing = field(default_factory=dict)  # its data directory as it started (orch_reset)
    clients: list[HubClient] = field(default_factory=list)

    def client(self, token: str | None = None) -> HubClient:
        c = HubClient(self.url, token)
        self.clients.append(c)
        return c

    @property
    def admin(self) -> HubClient:
        return self.client(self.admin_token)

    def stop(self) -> None:
        for c in self.clients:
            c.close()
        self.server.should_exit = True
        self.thread.join(timeout=30)


def start_hub(settings: HubSettings, signing: Path | None, port: int | None = None) -> RunningHub:
    """Start a hub; ``port`` brings a stopped hub back where its clients expect it."""
    if signing is not None and not (settings.gnupg_dir / "pubring.kbx").exists():
        settings.data.mkdir(parents=True, exist_ok=True)
        shutil.copytree(signing, settings.gnupg_dir, dirs_exist_ok=True, ignore=shutil.ignore_patterns("S.*", "*.lock"))
    hub = Hub(settings)
    app = create_app(settings, hub)
    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False,
                            timeout_graceful_shutdown=2, proxy_headers=False)  # as `deb-orchestrator hub` runs it
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the hub did not start")
        time.sleep(0.02)
    token = (settings.data / "admin.token").read_text().strip()
    return RunningHub(f"http://127.0.0.1:{port}", settings, hub, token, server, thread, data_listing(settings.data))


HubFactory = Callable[..., RunningHub]


class HubProcess:
    """``deb-orchestrator hub`` as a real process (its own memory, its own workers); stopped with SIGTERM."""

    def __init__(self, data: Path, *args: str, log: Path | None = None) -> None:
        import httpx

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log or data.parent / f"hub-{self.port}.log"
        self.proc = subprocess.Popen(
            [*CLI, "hub", "--data", str(data), "--listen",
             f"127.0.0.1:{self.port}", *args], stdout=self.log_path.open("a"), stderr=subprocess.STDOUT,
            start_new_session=True)
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{self.url}/api/v1/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert self.proc.poll() is None, self.log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, "the hub did not start"
            time.sleep(0.2)
        self.token = (data / "admin.token").read_text().strip()
        self.env = {**os.environ, "DEB_ORCHESTRATOR_HUB": self.url, "DEB_ORCHESTRATOR_TOKEN": self.token}

    def cli(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        """``deb-orchestrator ARGS`` as the admin; it must succeed."""
        res = subprocess.run([*CLI, *args], env=self.env, capture_output=True, text=True, timeout=timeout)
        assert res.returncode == 0, f"{args} -> {res.returncode}\n{res.stdout}\n{res.stderr}"
        return res

    def builder(self, token: str, cache: Path, log: Path, work: Path | None = None, *extra: str
                ) -> subprocess.Popen[bytes]:
        """``deb-orchestrator builder [EXTRA…]`` with a host's token (in its environment: ``ps`` would show
        --token), in its own process group; its work directory defaults to LOG.work (under the test's tmp_path)."""
        return subprocess.Popen([*CLI, "builder", "--hub", self.url, "--cache-dir", str(cache), "--work-dir",
                                 str(work or log.with_suffix(".work")), *extra],
                                env={**os.environ, "DEB_ORCHESTRATOR_TOKEN": token}, stdout=log.open("w"),
                                stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def stop_builder(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (a builder hands its tasks back and exits), then SIGKILL to its process group after 120 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(120)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
