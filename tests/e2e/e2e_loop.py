"""The seed loop's moving parts for the e2e tests: a real hub process (SQLite), real builder processes
running deb-mock, the tag set-up of docs/orchestrator.md over the trixie mirror, and the compose CLI."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from deb_bootc_compose.manifest import load as load_manifest
from deb_bootc_compose.paths import TargetPaths
from deb_bootc_compose.phases.base import ComposeContext
from deb_orchestrator.client import HubClient

CLI = [sys.executable, "-m", "deb_orchestrator.cli"]
COMPOSE = [str(Path(sys.executable).parent / "deb-bootc-compose")]
HELLO_DSC = "pool/main/h/hello/hello_2.10-3.dsc"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LoopHub:
    """``deb-orchestrator hub`` in its own process group; ``stop()`` ends it and every builder it started."""

    def __init__(self, data: Path, lease: float = 30.0) -> None:
        self.data = data
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        data.mkdir(parents=True, exist_ok=True)
        self.log_path = data.parent / "hub.log"
        self.log = self.log_path.open("w")
        self.builders: list[subprocess.Popen[bytes]] = []
        self.proc = subprocess.Popen([*CLI, "hub", "--data", str(data), "--listen", f"127.0.0.1:{self.port}",
                                      "--lease", str(lease), "--heartbeat", "1"],
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/api/v1/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the hub did not start:\n{self.log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        self.token = (data / "admin.token").read_text().strip()
        self.env = {**os.environ, "DEB_ORCHESTRATOR_HUB": self.url, "DEB_ORCHESTRATOR_TOKEN": self.token}

    def cli(self, *args: str, timeout: float = 900) -> str:
        res = subprocess.run([*CLI, *args], env=self.env, capture_output=True, text=True, timeout=timeout)
        if res.returncode != 0:
            raise AssertionError(f"deb-orchestrator {' '.join(args)} -> {res.returncode}\n{res.stdout}\n{res.stderr}")
        return res.stdout

    def setup_trixie(self, mirror: str) -> None:
        """docs/orchestrator.md's tag set: base (the mirror) ← dest ← build; target trixie: build → dest."""
        with HubClient(self.url, self.token) as admin:
            admin.setup_target("trixie", mirror=mirror, suite="trixie")

    def start_builder(self, name: str, cache: Path, workdir: Path) -> subprocess.Popen[bytes]:
        token = self.cli("add-host", name, "--arch", "amd64").strip().splitlines()[-1]
        log = (workdir / f"{name}.log").open("w")
        proc = subprocess.Popen([*CLI, "builder", "--hub", self.url, "--token", token, "--cache-dir", str(cache),
                                 "--work-dir", str(workdir / f"{name}.work")],
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.builders.append(proc)
        return proc

    def stop(self) -> None:
        for proc in [*self.builders, self.proc]:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in [*self.builders, self.proc]:
            try:
                proc.wait(120)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.log.close()


def hello_manifest(path: Path, hub_url: str, mirror: str, outputs: str = "[oci]") -> Path:
    """The issue's manifest (hello 2.10-3 built into trixie-dest; the mirror's trixie has a newer hello)."""
    path.write_text(f"""\
name: hello-bootc
version: "1"
suite: trixie
sources:
  - url: {mirror}
    components: [main]
  - orchestrator: {{url: "{hub_url}", tag: trixie-dest}}
build:
  target: trixie
  sources: ["{mirror}/{HELLO_DSC}"]
packages: [systemd, systemd-sysv, linux-image-amd64, hello]
outputs: {outputs}
""")
    return path


def run_compose(manifest: Path, target: Path, env: dict[str, str], timeout: float = 3600,
                extra: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*COMPOSE, "--config", str(manifest), "--target-dir", str(target), "--compose-type", "test",
                           *(extra or [])], env=env, capture_output=True, text=True, timeout=timeout)


def phase_context(tmp: Path, hub_url: str, sources: Sequence[Path | str | dict[str, str]], *, target: str, tag: str,
                  mirror: str = "http://deb.debian.org/debian") -> tuple[ComposeContext, list[str]]:
    """A compose context for running the build phase on its own; returns it and the progress messages.

    ``sources`` are .dsc paths or URLs, or ``{"git": URL, "ref": REF}`` mappings."""
    manifest_path = tmp / "manifest.yaml"
    src = "\n".join(f"    - {json.dumps(s) if isinstance(s, dict) else s}" for s in sources)
    manifest_path.write_text(f"""\
name: loop
version: "1"
suite: trixie
sources:
  - url: {mirror}
  - orchestrator: {{url: "{hub_url}", tag: {tag}}}
build:
  target: {target}
  sources:
{src}
packages: [hello]
""")
    paths = TargetPaths(tmp / "target")
    messages: list[str] = []
    ctx = ComposeContext(manifest=load_manifest(manifest_path), manifest_path=manifest_path, target=paths,
                         paths=paths.compose("loop-1-20261122.t.0"), compose_id="loop-1-20261122.t.0",
                         compose_type="test", progress=lambda _phase, msg: messages.append(msg))
    return ctx, messages
