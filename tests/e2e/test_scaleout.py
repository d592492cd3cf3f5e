"""The scale-out path for real: PostgreSQL on the host, the hub and two builders each in a network namespace of
its own (tests/e2e/netlab.py: veth pairs on a bridge, the mirror reached through the host's NAT), each builder
with its own deb-mock cache (seeded by hard links from the warm test cache, so CI does not bootstrap twice).
The compose build phase, on the host, builds two packages from git (3.0 (native) and 3.0 (quilt)) through
the hub; both builders take work; a clean trixie chroot installs the result from the signed tag repo over
the lab network. Then the builder machine running a third build dies mid-build; the other one takes it over
after the lease and the compose's build phase finishes (the issue's failover case). Every namespace, link and
iptables rule made is gone afterwards, also after a failure."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from e2e_loop import phase_context
from git_repos import git, native_repo, quilt_repo
from netlab import Lab, TcpRelay, preclean
from sqlalchemy import create_engine, text

from deb_bootc_compose.phases import build as build_phase
from deb_mock.config import config_for_suite
from deb_orchestrator.client import HubClient
from httpserve import serve_directory

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "deb_orchestrator"))
from orch_apt import apt_install_from, chroot_tarball
from orch_hub import free_port, postgres_database

pytestmark = pytest.mark.integration
CLI = [sys.executable, "-m", "deb_orchestrator.cli"]
POSTGRES_URL = os.environ.get("DEB_TEST_POSTGRES_URL")


def seed_cache(warm: Path, dest: Path, mirror: str) -> Path:
    """A builder's own deb-mock cache holding, by hard links, the warm cache's root cache for the config the
    builder will use (trixie/amd64 over ``mirror``): no second bootstrap, ~14k links made in a second."""
    config = config_for_suite("trixie", "amd64", mirror)
    name = f"{config.name}-{config.root_cache_key()}"
    (dest / "root-cache").mkdir(parents=True)
    if (warm / "root-cache" / name).is_dir():
        subprocess.run(["cp", "-a", "--link", str(warm / "root-cache" / name), str(dest / "root-cache" / name)],
                       check=True)
    return dest


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


class Machines:
    """Processes started in the lab's namespaces; ``stop()`` ends each one's whole process group."""

    def __init__(self, lab: Lab, logs: Path) -> None:
        self.lab, self.logs = lab, logs
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, machine: str, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        with (self.logs / f"{name}.log").open("w") as log:
            proc = subprocess.Popen(self.lab.exec_argv(machine, argv), stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        self.procs[name] = proc
        return proc

    def crash(self, name: str) -> None:
        """The machine dies: SIGKILL to the process and everything it started (no hand-back, no heartbeat)."""
        proc = self.procs[name]
        victims = [proc.pid, *descendants(proc.pid)]
        for pid in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait()

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def stop(self) -> None:
        """Builders first (they hand back their tasks to a hub still listening), then the hub."""
        order = sorted(self.procs, key=lambda name: name == "hub")
        for group in ([n for n in order if n != "hub"], ["hub"]):
            procs = [self.procs[n] for n in group if n in self.procs]
            for proc in procs:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for proc in procs:
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


@pytest.fixture
def lab() -> Iterator[Lab]:
    preclean()  # what a killed earlier run left (only entries whose process is gone)
    net = Lab()
    try:
        yield net
    finally:
        net.close()
        assert net.remaining() == {"namespaces": [], "links": [], "rules": []}, net.remaining()


def test_hub_and_two_builders_in_their_own_network_namespaces(lab: Lab, tmp_path: Path, test_cache: Path,
                                                              mirror: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert POSTGRES_URL, "set DEB_TEST_POSTGRES_URL (CI does: postgresql+psycopg://debci:debci@127.0.0.1:5432/postgres)"
    monkeypatch.setattr(build_phase, "POLL_SECONDS", 0.5)
    hub_ip, b1_ip, b2_ip = lab.add("hub"), lab.add("b1"), lab.add("b2")
    assert len({hub_ip, b1_ip, b2_ip, lab.host_ip}) == 4
    pg = urlsplit(POSTGRES_URL)
    machines = Machines(lab, tmp_path)
    with ExitStack() as stack:
        # PostgreSQL listens on 127.0.0.1 only; the relay on the bridge address is the hub's way to it
        relay = TcpRelay((lab.host_ip, 0), (pg.hostname or "127.0.0.1", pg.port or 5432))
        stack.callback(relay.close)
        db_url = stack.enter_context(postgres_database())
        db_name = db_url.rsplit("/", 1)[1]
        hub_db = f"postgresql+psycopg://{pg.username}:{pg.password}@{lab.host_ip}:{relay.address[1]}/{db_name}"
        stack.callback(machines.stop)

        port = free_port()
        hub_url = f"http://{hub_ip}:{port}"
        machines.start("hub", "hub", [*CLI, "hub", "--data", str(tmp_path / "hub-data"), "--db", hub_db,
                                      "--listen", f"{hub_ip}:{port}", "--lease", "10", "--heartbeat", "1"])
        deadline = time.monotonic() + 90
        while True:  # from the host, over the bridge
            try:
                if httpx.get(f"{hub_url}/api/v1/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert machines.procs["hub"].poll() is None, machines.log("hub")
            assert time.monotonic() < deadline, machines.log("hub")
            time.sleep(0.5)
        assert "database postgresql" in machines.log("hub")
        token = (tmp_path / "hub-data" / "admin.token").read_text().strip()
        monkeypatch.setenv("DEB_ORCHESTRATOR_TOKEN", token)
        admin = stack.enter_context(HubClient(hub_url, token))
        admin.setup_target("trixie", mirror=mirror, suite="trixie")

        caches = test_cache / "scaleout" / f"run-{os.getpid()}"  # same filesystem as the warm cache: hard links
        subprocess.run(["rm", "-rf", str(caches)], check=True)
        stack.callback(subprocess.run, ["rm", "-rf", str(caches)], check=True)
        for name in ("b1", "b2"):
            builder_token = admin.add_host(name, ["amd64"])["token"]
            cache = seed_cache(test_cache / "deb-mock", caches / name, mirror)
            machines.start(name, name, [*CLI, "builder", "--hub", hub_url, "--token", builder_token,
                                        "--cache-dir", str(cache), "--work-dir", str(tmp_path / f"{name}.work")])

        deadline = time.monotonic() + 120
        while True:  # both builders are polling the hub (a claim marks the host seen) before work is queued
            seen = {h["name"] for h in admin.hosts() if h.get("last_heartbeat")}
            if seen >= {"b1", "b2"}:
                break
            for name in ("b1", "b2"):
                assert machines.procs[name].poll() is None, machines.log(name)
            assert time.monotonic() < deadline, f"builders not polling: {seen}\n{machines.log('b1')[-2000:]}"
            time.sleep(0.5)

        served = tmp_path / "git"
        served.mkdir()
        native_repo(served, "scaleout-native", "1.0")
        quilt_repo(served, "scaleout-quilt", "2.0")
        commits = {n: git(served / f"{n}.git", "rev-parse", "main") for n in ("scaleout-native", "scaleout-quilt")}
        with serve_directory(served) as git_url:
            sources = [{"git": f"{git_url}/{n}.git", "ref": "main"} for n in commits]
            ctx, messages = phase_context(tmp_path, hub_url, sources, target="trixie", tag="trixie-dest",
                                          mirror=mirror)
            try:
                build_phase.BuildPhase(ctx).run()
            except Exception as exc:
                raise AssertionError(f"{exc}\n--- b1:\n{machines.log('b1')[-3000:]}\n--- b2:\n"
                                     f"{machines.log('b2')[-3000:]}\n--- hub:\n{machines.log('hub')[-3000:]}") from exc

        record = ctx.orchestrator_builds
        assert set(record) == {"scaleout-native_1.0", "scaleout-quilt_2.0-1"}
        hosts = set()
        for ident, rec in record.items():
            b = admin.build(ident)
            assert b["state"] == "complete" and b["requested_by"] == f"compose {ctx.compose_id}"
            arch_hosts = {t["host"] for t in b["tasks"] if t["method"] == "buildArch"}
            assert rec["hosts"] == sorted(arch_hosts) and len(arch_hosts) == 1
            hosts |= arch_hosts
            assert rec["git"]["commit"] == commits[ident.split("_")[0]]
        assert hosts == {"b1", "b2"}, f"both builders must take work: {hosts}; {messages}"
        for name in ("b1", "b2"):
            assert machines.procs[name].poll() is None, machines.log(name)
            assert any((caches / name / "root-cache").iterdir())
        # the hub really kept its state in PostgreSQL
        engine = create_engine(db_url)
        with engine.connect() as c:
            rows = c.execute(text("SELECT ident, state FROM builds ORDER BY ident")).all()
        engine.dispose()
        assert [tuple(r) for r in rows] == [("scaleout-native_1.0", "complete"), ("scaleout-quilt_2.0-1", "complete")]

        # the tag repo is usable: a clean trixie chroot (apt verifies with sqv) installs from it over the lab
        tarball = chroot_tarball(test_cache, "trixie", mirror)
        root = tmp_path / "apt-root"
        version = apt_install_from(tarball, root, admin.sources_line("trixie-dest", "/etc/apt/keyrings/hub.asc"),
                                   admin.repo_key("trixie-dest"), "scaleout-quilt")
        assert version == "2.0-1"
        assert (root / "usr/bin/scaleout-quilt").read_text() == '#!/bin/sh\necho "hello from scaleout-quilt, patched"\n'

        # the failover case across the network: the builder machine running the build a compose waits
        # for dies (kill -9 of the builder and all it started); after the lease the other builder takes the
        # task over and the compose's build phase still finishes
        # its build takes 20 s, so the crash surely lands while a builder is running it
        native_repo(served, "scaleout-failover", "1.0", build_seconds=20)
        (tmp_path / "second").mkdir()
        errors: list[BaseException] = []
        with serve_directory(served) as git_url:
            ctx2, messages2 = phase_context(tmp_path / "second", hub_url,
                                            [{"git": f"{git_url}/scaleout-failover.git", "ref": "main"}],
                                            target="trixie", tag="trixie-dest", mirror=mirror)

            def run_phase() -> None:
                try:
                    build_phase.BuildPhase(ctx2).run()
                except BaseException as exc:
                    errors.append(exc)

            thread = threading.Thread(target=run_phase, daemon=True)
            thread.start()
            deadline = time.monotonic() + 300
            while True:  # a builder runs it and deb-mock is working (the live log tail grows)
                found = admin.find_build("scaleout-failover_1.0")
                task = next((t for t in (found or {}).get("tasks", []) if t["method"] == "buildArch"), None)
                if task and task["state"] == "open" and task["host"] and admin.task(task["id"])["log_tail"]:
                    break
                assert not errors, errors
                assert time.monotonic() < deadline, f"no builder started the failover build: {task}"
                time.sleep(0.3)
            victim = task["host"]
            survivor = ({"b1", "b2"} - {victim}).pop()
            machines.crash(victim)
            thread.join(600)
        assert not thread.is_alive(), "the build phase did not finish after the builder died"
        assert not errors, f"{errors}\n--- {survivor}:\n{machines.log(survivor)[-3000:]}"
        after = admin.task(task["id"])
        assert after["host"] == survivor and after["attempts"] == 2, after
        assert admin.build("scaleout-failover_1.0")["state"] == "complete"
        assert ctx2.orchestrator_builds["scaleout-failover_1.0"]["hosts"] == [survivor]
        assert any(f"on {victim}" in m for m in messages2), messages2
        assert any(f"on {survivor} (attempt 2)" in m for m in messages2), messages2
