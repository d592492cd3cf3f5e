"""deb-orchestrator gc against a real hub over HTTP (SQLite and PostgreSQL): builds past their retention marked
deleted with their files gone, tagged builds and shared objects kept, the repositories still served and read by
apt-get, a dry run changing nothing, logs, events and tmp leftovers, busy builds untouched, refusals for deleted
builds, the admin scope, and the CLI."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from pathlib import Path

import pytest
from orch_gc import (
    DAY,
    age_store,
    build,
    check_repo_serves,
    make_orig,
    named_objects,
    objects,
    quilt_source,
    setup_tags,
    untag,
)
from orch_helpers import FakeBuilder, make_source
from orch_hub import RunningHub
from sqlalchemy import update

from deb_orchestrator.cli import main
from deb_orchestrator.cli.common import UsageError
from deb_orchestrator.cli.gc import retention_from
from deb_orchestrator.client import HubClient, HubError
from deb_orchestrator.hub import builds
from deb_orchestrator.hub.models import Build
from deb_orchestrator.wire import GcReport
from debsandbox.locks import flock

NOW = {"untagged_build_days": 0, "failed_build_days": 0}


def _refused(call: object) -> tuple[int, str]:
    assert callable(call)
    with pytest.raises(HubError) as err:
        call()
    return err.value.status, err.value.detail


def _builder(hub: RunningHub, tmp_path: Path) -> tuple[HubClient, FakeBuilder]:
    admin = hub.admin
    setup_tags(admin)
    token = admin.add_host("b1", ["amd64"])["token"]
    return admin, FakeBuilder(hub.client(token), tmp_path / "fb")


def _quiet(hub: RunningHub) -> None:
    """Wait for a publication under way (none is due: untag waited for that): no event or repository changes
    behind the test's back."""
    with hub.hub.publisher.lock:
        pass


def _files(admin: HubClient, ident: str) -> dict[str, str]:
    return {f.name: f.sha256 for f in admin.build(ident).files}


def test_gc_collects_untagged_and_failed_builds_only(hub: RunningHub, tmp_path: Path) -> None:
    admin, fb = _builder(hub, tmp_path)
    orig = make_orig(tmp_path, "orch-gc", "1.0")
    kept = build(admin, fb, quilt_source(tmp_path, "orch-gc", "1.0-1", orig))  # tagged in dest at completion
    gone_dsc = quilt_source(tmp_path, "orch-gc", "1.0-2", orig)
    gone = build(admin, fb, gone_dsc)
    failed = build(admin, fb, make_source(tmp_path, "orch-gc-bad", "1.0"), exit_code=1)
    untag(admin, gone)
    _quiet(hub)
    store = hub.settings.store_dir
    age_store(store)  # two days pass
    files = {b: _files(admin, b) for b in (kept, gone, failed)}
    orig_sha = files[kept][orig.name]
    assert files[gone][orig.name] == orig_sha  # one object, named by both revisions
    expected = (set(files[gone].values()) | set(files[failed].values())) - set(files[kept].values())
    before, events_before = objects(store), admin.events(limit=5000)

    dry = admin.gc(dry_run=True, retention=NOW)
    assert dry.dry_run and sorted((b.ident, b.was) for b in dry.builds) == sorted(
        [(gone, "complete"), (failed, "failed")])
    assert "untagged for" in next(b.why for b in dry.builds if b.ident == gone)
    assert {o.sha256 for o in dry.objects} == expected and orig_sha not in expected
    assert objects(store) == before and admin.events(limit=5000) == events_before  # nothing changed
    assert [admin.build(b).state for b in (kept, gone, failed)] == ["complete", "complete", "failed"]

    real = admin.gc(retention=NOW)
    assert not real.dry_run and [(b.ident, b.files) for b in real.builds] == [
        (b.ident, b.files) for b in dry.builds]
    assert {o.sha256 for o in real.objects} == expected
    assert real.bytes == sum(o.size for o in real.objects) > 0
    assert objects(store) == before - expected and orig_sha in objects(store)
    assert [admin.build(b).state for b in (kept, gone, failed)] == ["complete", "deleted", "deleted"]
    assert admin.build(gone).files == [] and [p.name for p in admin.build(gone).packages] == ["orch-gc"]
    assert set(named_objects(hub.settings.database_url)) <= objects(store)  # no row names a missing object
    deleted = [e for e in admin.events(limit=5000) if e.kind == "build.deleted"]
    assert sorted(e.data["ident"] for e in deleted) == sorted([gone, failed])

    # the repositories still serve every file, apt reads them
    assert check_repo_serves(hub.url, "dest", tmp_path / "apt-dest") == 1 + 3  # the .deb, .dsc, orig, debian.tar
    assert check_repo_serves(hub.url, "build", tmp_path / "apt-build") == 4

    # a deleted build stays built once: no resubmit, no tagging, no new submission, no downloads
    status, detail = _refused(lambda: admin.resubmit(failed))
    assert status == 409 and "deleted by deb-orchestrator gc" in detail and "build a new version" in detail
    status, detail = _refused(lambda: admin.tag_build("dest", gone))
    assert status == 409 and f"build {gone} was deleted" in detail
    status, detail = _refused(lambda: admin.submit("t", gone_dsc))
    assert status == 409 and "cannot be submitted again" in detail
    status, detail = _refused(lambda: admin.download(f"/builds/{gone}/files/{gone_dsc.name}", tmp_path / "x"))
    assert status == 410 and "cannot be downloaded" in detail

    again = admin.gc(retention=NOW)
    assert again.builds == [] and again.objects == [] and again.bytes == 0


def test_gc_waits_for_a_tagging_under_way(hub: RunningHub, tmp_path: Path) -> None:
    """A tag-build that locked the build's row first wins: gc waits for it, then sees the build tagged."""
    admin, fb = _builder(hub, tmp_path)
    ident = build(admin, fb, make_source(tmp_path, "orch-gc-race", "1.0"))
    untag(admin, ident)
    age_store(hub.settings.store_dir)
    with hub.hub.db.session() as s:  # untagged two days ago: no grace for recent untaggings applies
        s.execute(update(Build).where(Build.ident == ident).values(untagged=time.time() - 2 * DAY))
    outcome: list[object] = []
    with hub.hub.db.session() as s:  # the tagging's transaction, still open while gc starts
        builds.tag_build(s, builds.get_tag(s, "dest"), builds.get_build(s, ident), "test")
        worker = threading.Thread(target=lambda: outcome.append(admin.gc(retention=NOW)))
        worker.start()
        time.sleep(1.0)
        assert worker.is_alive() and not outcome  # waiting for the build's row (SQLite: for the writer)
    worker.join(60)
    report = outcome[0]
    assert isinstance(report, GcReport) and report.builds == [] and report.objects == []
    assert admin.build(ident).state == "complete" and set(_files(admin, ident).values()) <= objects(
        hub.settings.store_dir)


def _object(store: Path, content: bytes, age_days: float) -> tuple[str, Path]:
    sha = hashlib.sha256(content).hexdigest()
    path = store / "objects" / sha[:2] / sha[2:]
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(content)
    then = time.time() - age_days * DAY
    os.utime(path, (then, then))
    return sha, path


def _leftover(path: Path, age_days: float, content: bytes = b"partial upload") -> None:
    if path.suffix == ".d":
        path.mkdir()
        (path / "x.dsc").write_bytes(content)
        targets = [path / "x.dsc", path]
    else:
        path.write_bytes(content)
        targets = [path]
    then = time.time() - age_days * DAY
    for t in targets:
        os.utime(t, (then, then))


def test_gc_logs_events_tmp_and_unnamed_objects(hub: RunningHub, tmp_path: Path) -> None:
    admin, fb = _builder(hub, tmp_path)
    builder = fb.client
    idents = []
    for name in ("orch-gc-tagged", "orch-gc-untagged"):
        sub = admin.submit("t", make_source(tmp_path, name, "1.0"))
        payload = fb.claim()
        assert payload is not None
        builder.heartbeat(payload.task_id, payload.fence, [f"building {name}"])
        fb.finish(payload)
        idents.append((sub.build.ident, payload.task_id))
    (tagged, tagged_task), (untagged, untagged_task) = idents
    untag(admin, untagged)
    _quiet(hub)
    store = hub.settings.store_dir
    age_store(store)
    old_orphan, _ = _object(store, b"an object no row names", 2)
    new_orphan, _ = _object(store, b"an upload whose row is not committed yet", 0)
    linked, linked_path = _object(store, b"still hard-linked into a repository", 2)
    pool_copy = hub.settings.repos_dir / "dest" / "pool" / "gc-test" / "linked.bin"
    pool_copy.parent.mkdir(parents=True)
    os.link(linked_path, pool_copy)
    _leftover(store / "tmp" / "upload-old", 2)
    _leftover(store / "tmp" / "fetch-old.d", 2)
    _leftover(store / "tmp" / "upload-now", 0)
    n_events = len(admin.events(limit=5000))
    untagged_log = _files(admin, untagged)["build.log"]

    r = admin.gc(retention={"log_days": 0, "event_days": 0}, keep_forever=["untagged_build_days"])
    assert r.builds == [] and r.retention.untagged_build_days is None
    assert [(g.build, g.task_id, g.name) for g in r.logs] == [(untagged, untagged_task, "build.log")]
    assert r.log_tails == 1
    assert {o.sha256 for o in r.objects} == {old_orphan, untagged_log}
    assert r.kept_objects == 2 and {new_orphan, linked} <= objects(store)
    assert sorted(f.name for f in r.tmp) == ["fetch-old.d", "upload-old"]
    assert sorted(p.name for p in (store / "tmp").iterdir()) == ["upload-now"]
    assert r.rows == {"events": n_events, "webhook_deliveries": 0, "audit": 0} and admin.events(limit=5000) == []

    assert "build.log" in _files(admin, tagged) and admin.task(tagged_task).log_tail == "building orch-gc-tagged"
    assert "build.log" not in _files(admin, untagged) and admin.task(untagged_task).log_tail == ""
    assert admin.build(untagged).state == "complete"
    deb = admin.download(f"/builds/{untagged}/files/orch-gc-untagged_1.0_all.deb", tmp_path / "u.deb")
    assert deb.stat().st_size > 0
    assert set(named_objects(hub.settings.database_url)) <= objects(store)


def test_gc_leaves_busy_builds_alone(hub: RunningHub, tmp_path: Path) -> None:
    admin, fb = _builder(hub, tmp_path)
    waiting = admin.submit("t", make_source(tmp_path, "orch-gc-wait", "1.0")).build.ident
    fb.step(3, missing=[{"relation": "libnothing-dev", "packages": ["libnothing-dev"]}])  # nothing releases it
    again = build(admin, fb, make_source(tmp_path, "orch-gc-again", "1.0"), exit_code=1)
    admin.resubmit(again)
    queued = admin.submit("t", make_source(tmp_path, "orch-gc-queued", "1.0")).build.ident
    running = fb.claim()  # the resubmitted build's new task
    assert running is not None and running.build == again
    assert [admin.build(b).state for b in (waiting, again, queued)] == ["dep-wait", "building", "building"]
    age_store(hub.settings.store_dir)
    before = objects(hub.settings.store_dir)
    r = admin.gc(retention={**NOW, "log_days": 0})
    assert r.builds == [] and r.logs == [] and r.objects == []
    assert objects(hub.settings.store_dir) == before
    assert fb.finish(running).build_state == "complete"
    assert admin.build(again).state == "complete"


def test_gc_needs_admin_and_runs_one_at_a_time(hub: RunningHub, tmp_path: Path) -> None:
    admin = hub.admin
    assert _refused(lambda: hub.client().gc())[0] == 401
    for scope in ("build", "tag"):
        token = admin.create_token(f"u-{scope}", [scope])["token"]
        status, detail = _refused(lambda t=token: hub.client(t).gc(dry_run=True))  # type: ignore[misc]
        assert status == 403 and "'admin' scope" in detail
    status, detail = _refused(lambda: admin.gc(keep_forever=["tmp_days"]))
    assert status == 422 and "cannot be kept forever" in detail
    status, _ = _refused(lambda: admin.gc(retention={"event_days": -1}))
    assert status == 422
    with flock(hub.settings.store_dir / ".gc.lock"):
        status, detail = _refused(lambda: admin.gc(dry_run=True))
    assert status == 409 and "a gc is running" in detail
    assert admin.gc(dry_run=True).dry_run


def test_gc_cli(hub: RunningHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DEB_ORCHESTRATOR_HUB", hub.url)
    monkeypatch.setenv("DEB_ORCHESTRATOR_TOKEN", hub.admin_token)
    monkeypatch.setenv("DEB_ORCHESTRATOR_CONFIG", str(tmp_path / "none.toml"))
    admin, fb = _builder(hub, tmp_path)
    ident = build(admin, fb, make_source(tmp_path, "orch-gc-cli", "1.0"))
    untag(admin, ident)
    age_store(hub.settings.store_dir)

    assert main(["gc", "--dry-run", "--retain", "untagged-builds=12h"]) == 0  # completed just now: kept
    out = capsys.readouterr().out
    assert out.splitlines()[-1].startswith("0 build(s) marked deleted") and "would free 0 B" in out
    assert main(["gc", "--dry-run", "--json", "--retain", "untagged-builds=0"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["dry_run"] and [b["ident"] for b in report["builds"]] == [ident]
    assert main(["gc", "--retain", "untagged-builds=0", "--retain", "events=forever"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"build {ident} deleted (was complete): untagged for 0.0 days (retention 0)")
    assert any(line.startswith("object ") for line in lines)
    assert lines[-1].startswith("1 build(s) marked deleted") and " freed " in lines[-1]
    assert admin.build(ident).state == "deleted"

    for bad, why in ((["--retain", "nothing=1"], "KIND=DAYS"), (["--retain", "tmp=forever"], "cannot be kept"),
                     (["--retain", "logs=soon"], "not a duration")):
        assert main(["gc", *bad]) == 2
        assert why in capsys.readouterr().err
    monkeypatch.setenv("DEB_ORCHESTRATOR_TOKEN", admin.create_token("bob", ["build"])["token"])
    assert main(["gc"]) == 1
    assert "'admin' scope" in capsys.readouterr().err


def test_hub_retain_option() -> None:
    r = retention_from(["untagged-builds=7", "logs=12h", "events=forever", "tmp=2d"])
    assert (r.untagged_build_days, r.log_days, r.event_days, r.tmp_days) == (7.0, 0.5, None, 2.0)
    assert (r.failed_build_days, r.object_grace_days) == (14.0, 1 / 24)  # the defaults
    for bad in ("untagged-builds", "objects=forever", "logs=-1", "logs=1w"):
        with pytest.raises(UsageError):
            retention_from([bad])
