"""The seed loop's moving parts for the e2e tests: a real hub process (SQLite), real builder processes
running deb-mock, the tag set-up of docs/orchestrator.md over the trixie mirror, and the compose CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from deb_bootc_compose.manifest import load as load_manifest
from deb_bootc_compose.paths import TargetPaths
from deb_bootc_compose.phases.base import ComposeContext
from deb_orchestrator.client import HubClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "deb_orchestrator"))
from orch_hub import HubProcess, stop_builder

COMPOSE = [str(Path(sys.executable).parent / "deb-bootc-compose")]
HELLO_DSC = "pool/main/h/hello/hello_2.10-3.dsc"


class LoopHub(HubProcess):
    """``deb-orchestrator hub`` in its own process group (orch_hub.HubProcess) with the builders it started;
    ``stop()`` ends them and the hub."""

    def __init__(self, data: Path, lease: float = 30.0) -> None:
        data.mkdir(parents=True, exist_ok=True)
        super().__init__(data, "--lease", str(lease), "--heartbeat", "1", log=data.parent / "hub.log")
        self.data = data
        self.builders: list[subprocess.Popen[bytes]] = []

    def setup_trixie(self, mirror: str) -> None:
        """docs/orchestrator.md's tag set: base (the mirror) ← dest ← build; target trixie: build → dest."""
        with HubClient(self.url, self.token) as admin:
            admin.setup_target("trixie", mirror=mirror, suite="trixie")

    def start_builder(self, name: str, cache: Path, workdir: Path) -> subprocess.Popen[bytes]:
        token = self.cli("add-host", name, "--arch", "amd64").stdout.strip().splitlines()[-1]
        proc = self.builder(token, cache, workdir / f"{name}.log", work=workdir / f"{name}.work")
        self.builders.append(proc)
        return proc

    def stop(self) -> None:
        for proc in self.builders:
            stop_builder(proc)
        super().stop()


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
                  mirror: str = "http://deb.debian.org/debian", packages: str = "[hello]",
                  update: bool = False) -> tuple[ComposeContext, list[str]]:
    """A compose context for running the build phase on its own; returns it and the progress messages.

    ``sources`` are .dsc paths or URLs, or ``{"git": URL, "ref": REF}`` mappings. ``update``: the manifest
    has an ``update:`` section (so the build phase makes the deb-bootc client too)."""
    manifest_path = tmp / "manifest.yaml"
    src = "\n".join(f"    - {json.dumps(s) if isinstance(s, dict) else s}" for s in sources)
    extra = ""
    if update:
        (tmp / "ostree.asc").write_text("the build and gather phases do not read the key\n")
        extra = 'update:\n  ostree: {url: "https://updates.example.org/repo", gpg_public_key: ostree.asc}\n'
    manifest_path.write_text(f"""\
name: loop
version: "1"
suite: trixie
sources:
  - url: {mirror}
  - orchestrator: {{url: "{hub_url}", tag: {tag}}}
build:
  target: {target}
  sources:{chr(10) + src if src else " []"}
packages: {packages}
{extra}""")
    paths = TargetPaths(tmp / "target")
    messages: list[str] = []
    ctx = ComposeContext(manifest=load_manifest(manifest_path), manifest_path=manifest_path, target=paths,
                         paths=paths.compose("loop-1-20261122.t.0"), compose_id="loop-1-20261122.t.0",
                         compose_type="test", progress=lambda _phase, msg: messages.append(msg))
    return ctx, messages
