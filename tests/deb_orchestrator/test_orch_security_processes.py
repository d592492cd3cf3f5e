"""Attacks that need the hub or the builder as real processes: a .deb that unpacks to 1 GiB against the
hub's own memory, a revoked token against several hub workers, secret files' modes at start, and the
builder's token given without showing it in ps."""

from __future__ import annotations

import gzip
import os
import stat
import subprocess
import sys
import time
import zlib
from pathlib import Path

import httpx
import pytest
from orch_helpers import ar_archive, make_source, put_file
from orch_hub import POSTGRES_URL, HubFactory, HubProcess, RunningHub, postgres_database

from deb_orchestrator.client import HubClient

CLI = [sys.executable, "-m", "deb_orchestrator.cli"]


def vm_hwm_kib(pid: int) -> int:
    """The peak resident memory of a process (VmHWM), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def zeros_gz(path: Path, size: int) -> Path:
    """``size`` zero bytes, gzip-compressed as a stream (about 1 MiB per GiB)."""
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(1 << 20)
    with path.open("wb") as f:
        for _ in range(size >> 20):
            f.write(z.compress(block))
        f.write(z.flush())
    return path


@pytest.mark.integration
def test_control_tar_bomb_refused_in_little_memory(tmp_path: Path) -> None:
    hub = HubProcess(tmp_path / "data")
    try:
        admin = HubClient(hub.url, hub.token)
        admin.add_tag("base", external_repos=[{"url": "http://deb.debian.org/debian", "suite": "trixie"}])
        admin.add_target("t", "base", "base")
        admin.submit("t", make_source(tmp_path, "orch-bomb", "1.0"))
        builder = HubClient(hub.url, admin.add_host("b", ["amd64"])["token"])
        payload = builder.claim(["amd64"], wait=5)
        assert payload is not None
        bomb = ar_archive(tmp_path / "orch-bomb_1.0_all.deb", [
            ("debian-binary", b"2.0\n"),
            ("control.tar.gz", zeros_gz(tmp_path / "control.tar.gz", 1 << 30).read_bytes()),
            ("data.tar.gz", gzip.compress(bytes(10240)))])
        assert bomb.stat().st_size < 2 << 20
        warm = put_file(builder, payload, tmp_path / "control.tar.gz", "warm-up.bin")  # the upload path, warmed
        assert warm.status_code == 201
        before = vm_hwm_kib(hub.proc.pid)
        started = time.monotonic()
        r = put_file(builder, payload, bomb)
        seconds = time.monotonic() - started
        grown = (vm_hwm_kib(hub.proc.pid) - before) / 1024
        assert grown < 30, f"the hub's peak memory grew by {grown:.0f} MiB refusing a 1 GiB control.tar"
        assert r.status_code == 400 and "control.tar.gz unpacks to more than 64 MiB" in r.json()["detail"], r.text
        print(f"control.tar bomb refused in {seconds:.2f} s; hub peak memory grew {grown:.1f} MiB")
        admin.close()
        builder.close()
    finally:
        hub.stop()


@pytest.mark.integration
def test_revoked_token_fails_at_once_in_every_worker(tmp_path: Path) -> None:
    assert POSTGRES_URL, "several hub workers need PostgreSQL: set DEB_TEST_POSTGRES_URL (.ci/run does)"
    with postgres_database() as db:
        hub = HubProcess(tmp_path / "data", "--db", db, "--workers", "2")
        try:
            with HubClient(hub.url, hub.token) as admin:
                made = admin.create_token("mallory", ["build"])
            headers = {"Authorization": f"Bearer {made['token']}"}
            pids = set()
            for _ in range(40):  # a new connection each time: the kernel spreads them over both workers
                r = httpx.get(f"{hub.url}/api/v1/whoami", headers=headers)
                assert r.status_code == 200
                pids.add(httpx.get(f"{hub.url}/api/v1/health").json()["pid"])
            assert len(pids) == 2, f"only worker(s) {pids} answered"
            with HubClient(hub.url, hub.token) as admin:
                admin.request("DELETE", f"/tokens/{made['id']}")
            answered = set()
            for _ in range(40):
                r = httpx.get(f"{hub.url}/api/v1/whoami", headers=headers)
                assert r.status_code == 401, f"a revoked token still worked: {r.text}"
                answered.add(httpx.get(f"{hub.url}/api/v1/health").json()["pid"])
            assert len(answered) == 2
        finally:
            hub.stop()


def test_secret_files_are_private_and_fixed_at_start(make_hub: HubFactory, db_kind: str) -> None:
    hub = make_hub()  # own hubs: it stops the hub, makes its files readable and starts another
    data = hub.settings.data
    secrets = [data / "admin.token", hub.settings.gnupg_dir, *[p for p in hub.settings.gnupg_dir.rglob("*")
                                                               if p.is_file() and not p.name.startswith("S.")]]
    if db_kind == "sqlite":
        secrets.append(data / "hub.db")
    for path in secrets:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o077 == 0, f"{path} is {mode:04o}"
    hub.stop()
    for path in secrets:  # an older hub, a restore from backup or a copy left them readable
        path.chmod(0o755 if path.is_dir() else 0o644)
    make_hub()
    for path in secrets:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o077 == 0, f"{path} is {mode:04o} after a restart"


def run_builder(hub: RunningHub, tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> str:
    hub.admin.noop(1)
    res = subprocess.run([*CLI, "builder", "--hub", hub.url, "--once", "--work-dir", str(tmp_path / "work"), *args],
                         env={**{k: v for k, v in os.environ.items() if not k.startswith("DEB_ORCHESTRATOR")},
                              **(env or {})}, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stderr


def test_builder_token_from_file_or_environment_not_ps(hub: RunningHub, tmp_path: Path) -> None:
    token = hub.admin.add_host("b-secret", ["amd64"])["token"]
    file = tmp_path / "token"
    file.write_text(token + "\n")
    file.chmod(0o644)
    out = run_builder(hub, tmp_path, "--token-file", str(file))
    assert stat.S_IMODE(file.stat().st_mode) == 0o600 and "made it 0600" in out
    assert "warning" not in run_builder(hub, tmp_path, env={"DEB_ORCHESTRATOR_TOKEN": token})
    out = run_builder(hub, tmp_path, "--token", token)
    assert "warning: --token puts the token in the process list" in out
    closed = [t for t in hub.admin.tasks() if t["method"] == "noop" and t["state"] == "closed"]
    assert len(closed) == 3
    env = {**os.environ, "DEB_ORCHESTRATOR_HUB": hub.url, "DEB_ORCHESTRATOR_TOKEN": hub.admin_token}
    hint = subprocess.run([*CLI, "add-host", "b-hint", "--arch", "amd64"], capture_output=True, text=True, env=env)
    assert "--token-file" in hint.stderr and "--token TOKEN" not in hint.stderr, hint.stderr


@pytest.mark.integration
def test_allow_source_host_flag(tmp_path: Path) -> None:
    from httpserve import serve_directory

    (tmp_path / "src").mkdir()
    make_source(tmp_path / "src", "orch-allowed", "1.0")
    with serve_directory(tmp_path / "src") as served:
        port = served.rsplit(":", 1)[1]
        # the source is in no signed index: --no-verify-source lets it in, logged and recorded on the build
        hub = HubProcess(tmp_path / "data", "--allow-source-host", f"LOCALHOST:{port}", "--no-verify-source")
        try:
            with HubClient(hub.url, hub.token) as admin:
                admin.add_tag("base", external_repos=[{"url": "http://deb.debian.org/debian", "suite": "trixie"}])
                admin.add_target("t", "base", "base")
                sub = admin.submit("t", f"http://localhost:{port}/orch-allowed_1.0.dsc")
                assert sub["build"]["ident"] == "orch-allowed_1.0"
                assert sub["build"]["source_trust"] == "none" and sub["build"]["source_verified"] is False
                for url in (f"{served}/orch-allowed_1.0.dsc", f"http://localhost:{int(port) + 1}/x_1.0.dsc"):
                    r = httpx.post(f"{hub.url}/api/v1/builds", json={"target": "t", "source_url": url},
                                   headers={"Authorization": f"Bearer {hub.token}"})
                    assert r.status_code == 403 and "allow-list" in r.json()["detail"], (url, r.text)
        finally:
            hub.stop()
    log = hub.log_path.read_text()
    assert "--no-verify-source: .dsc URLs that cannot be authenticated are accepted" in log, log[-2000:]
    assert "orch-allowed_1.0.dsc NOT VERIFIED" in log, log[-2000:]
