"""A gc killed half-way (SIGKILL to the hub process while it removes store objects) leaves the database and the
store consistent: every object a live build names is there, the build it marked deleted stays deleted, and the
next gc, after a restart, removes what the killed one left. On SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest
from orch_gc import age_store, build, check_repo_serves, named_objects, objects, settle, setup_tags, untag
from orch_helpers import FakeBuilder, make_source
from orch_hub import HubProcess, database_url

from deb_orchestrator.client import HubClient

pytestmark = pytest.mark.integration
ORPHANS = 20_000  # unnamed objects: enough that a gc takes a while to remove them
NOW = {"untagged_build_days": 0, "failed_build_days": 0}


def hub_process(data: Path, signing: Path, *args: str) -> HubProcess:
    if not (data / "gnupg").exists():
        shutil.copytree(signing, data / "gnupg", ignore=shutil.ignore_patterns("S.*", "*.lock"))
    return HubProcess(data, *args, "--log-level", "warning")


def make_orphans(store: Path, count: int) -> list[Path]:
    """``count`` objects no row names, in the store's order (gc walks the fan-out directories in order)."""
    paths = []
    for i in range(count):
        content = f"orphan {i}\n".encode()
        sha = hashlib.sha256(content).hexdigest()
        path = store / "objects" / sha[:2] / sha[2:]
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(content)
        paths.append(path)
    return sorted(paths)


def test_gc_killed_midway_and_finished_by_the_next(db_kind: str, tmp_path: Path, signing_home: Path) -> None:
    data = tmp_path / "data"
    with database_url(db_kind, data) as db:
        args = ("--db", db) if db_kind == "postgresql" else ()
        hub = hub_process(data, signing_home, *args)
        try:
            admin = HubClient(hub.url, hub.token)
            setup_tags(admin)
            fb = FakeBuilder(HubClient(hub.url, admin.add_host("b1", ["amd64"])["token"]), tmp_path / "fb")
            kept = build(admin, fb, make_source(tmp_path, "orch-gc-kept", "1.0"))
            gone = build(admin, fb, make_source(tmp_path, "orch-gc-gone", "1.0"))
            untag(admin, gone)
            store = data / "store"
            named = set(named_objects(db))
            orphans = make_orphans(store, ORPHANS)
            age_store(store)
            first_dir = [p for p in orphans if p.parent == orphans[0].parent]
            outcome: list[object] = []
            worker = threading.Thread(target=lambda: outcome.append(_gc(admin)))
            worker.start()
            deadline = time.monotonic() + 120
            while first_dir[-1].exists():  # the first fan-out directory is done: the commit is behind it
                assert time.monotonic() < deadline and worker.is_alive(), f"gc did not start removing: {outcome}"
                time.sleep(0.001)
            os.killpg(hub.proc.pid, signal.SIGKILL)
            hub.proc.wait()
            worker.join()
        finally:
            hub.stop()
        assert outcome and isinstance(outcome[0], Exception), f"gc finished before the kill: {outcome}"
        left = objects(store)
        remaining = [p for p in orphans if p.exists()]
        assert 0 < len(remaining) < ORPHANS - len(first_dir) + 1, "the kill did not land half-way"
        assert set(named_objects(db)) <= left  # every object a live build names is there

        hub = hub_process(data, signing_home, *args, "--retain", "untagged-builds=0", "--retain", "events=forever")
        try:
            admin = HubClient(hub.url, hub.token)
            assert admin.build(gone).state == "deleted" and admin.build(kept).state == "complete"
            report = admin.gc()  # the hub's own retention now
            assert (report.retention.untagged_build_days, report.retention.event_days) == (0, None)
            assert report.builds == [] and len(report.objects) >= len(remaining)
            assert objects(store) == set(named_objects(db)) < named  # what the builds name, nothing else
            settle(admin)
            assert check_repo_serves(hub.url, "dest", tmp_path / "apt") == 3  # .deb, .dsc, .tar.xz
        finally:
            hub.stop()


def _gc(admin: HubClient) -> object:
    try:
        return admin.gc(retention=NOW)
    except Exception as exc:  # the hub was killed under it
        return exc
