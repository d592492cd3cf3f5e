"""`deb-orchestrator gc`: what the hub keeps and what goes (docs/operations.md "Retention: deb-orchestrator gc").

One run has two steps:

1. **The database**, in one transaction: builds past their retention are marked ``deleted`` (their row, tasks
   and package list stay: a source version is built once per hub) and their artifact rows dropped; log
   files and log tails of old finished tasks of builds in no tag go; old rows of the event log (and of every
   table in ``TABLES``) are deleted. A dry run rolls this transaction back.
2. **The store**, after the commit (hub/gcstore.py): every object no artifact row of a live build names is
   removed, and leftovers in ``store/tmp``. Removing files only after the commit, and only files no row
   names, keeps the database and the store consistent whenever gc stops: a gc killed in step 2 leaves
   unreferenced objects, which the next gc removes (it looks at the whole store, not at a list it made).

Never collected: a build tagged anywhere, or listed by a published repository (its files are what the repo
serves; repos hold hard links, so even a removed store entry would stay served), or untagged within the hour
while a repository waits to be published, or with a task that is waiting or running; an object still
hard-linked into a repository, or written less than ``object_grace_days`` ago (an upload whose row is not
committed yet).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, delete, func, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from deb_orchestrator.hub import events
from deb_orchestrator.hub.config import Retention
from deb_orchestrator.hub.db import Database
from deb_orchestrator.hub.errors import Conflict, HubError
from deb_orchestrator.hub.gcstore import StoreSweep
from deb_orchestrator.hub.models import (
    Artifact,
    AuditRecord,
    BinaryPackage,
    Build,
    Event,
    Repo,
    TagListing,
    Task,
    WebhookDelivery,
)
from deb_orchestrator.hub.store import Store
from deb_orchestrator.states import ACTIVE_TASK_STATES, BuildState
from deb_orchestrator.wire import GcIn, GcReport
from debsandbox.locks import LockBusy, flock

log = logging.getLogger("deb_orchestrator.hub.gc")
DAY = 86400.0
FOREVER_ALLOWED = ("untagged_build_days", "failed_build_days", "log_days", "event_days", "audit_days")
# whatever the retention says, an object or tmp file this new stays: it may belong to a request under way
MIN_OBJECT_AGE = 60.0
MIN_TMP_AGE = 600.0
UNTAG_GRACE = 3600.0


@dataclass(frozen=True)
class TableRetention:
    """A table whose old rows gc deletes: rows whose ``ts`` column is older than ``Retention.<days>``.
    The audit log and the webhook outbox plug in here (with a field of their own in ``Retention``)."""

    name: str
    ts: InstrumentedAttribute[float]
    days: str  # the field of Retention
    keep: Callable[[], ColumnElement[bool]] | None = None  # rows never deleted (e.g. undelivered webhooks)


TABLES: list[TableRetention] = [
    TableRetention("events", Event.ts, "event_days"),
    # sent or given up: with the events they carried; a delivery still pending is never dropped
    TableRetention("webhook_deliveries", WebhookDelivery.created, "event_days",
                   keep=lambda: WebhookDelivery.state == "pending"),
    TableRetention("audit", AuditRecord.ts, "audit_days"),
]


def effective(base: Retention, body: GcIn) -> Retention:
    """The hub's retention with the call's overrides."""
    changes: dict[str, Any] = {k: v for k, v in body.retention.model_dump(exclude_unset=True).items()
                               if v is not None}
    for name in body.keep_forever:
        if name not in FOREVER_ALLOWED:
            raise HubError(f"keep_forever: {name!r} cannot be kept forever; choose from {', '.join(FOREVER_ALLOWED)}",
                           422)
        changes[name] = None
    return replace(base, **changes)


def retention_json(r: Retention) -> dict[str, Any]:
    return {f.name: getattr(r, f.name) for f in fields(Retention)}


def _cutoff(now: float, days: float | None) -> float | None:
    return None if days is None else now - days * DAY


def _busy_build_ids(s: Session) -> set[int]:
    return set(s.scalars(select(Task.build_id).where(Task.state.in_(ACTIVE_TASK_STATES), Task.build_id.is_not(None))
                         .distinct()))


def _kept_build_ids(s: Session, now: float) -> set[int]:
    """Builds whose files must stay whatever their age: tagged, listed by a published repository, or with a
    task waiting or running; while a repository waits to be published again, builds untagged in the last
    ``UNTAG_GRACE`` seconds too (a publication that started before their untagging may be linking them)."""
    kept = set(s.scalars(select(TagListing.build_id).distinct()))
    for ids in s.scalars(select(Repo.build_ids)):
        kept.update(int(i) for i in ids or [])
    if s.scalar(select(Repo.id).where(Repo.dirty.is_(True)).limit(1)) is not None:
        kept.update(s.scalars(select(Build.id).where(Build.untagged > now - UNTAG_GRACE)))
    return kept | _busy_build_ids(s)


def _candidates(s: Session, r: Retention, now: float) -> list[tuple[int, str, str]]:
    """(build id, state, why) of the builds past their retention, by id."""
    out: list[tuple[int, str, str]] = []
    untagged, failed = _cutoff(now, r.untagged_build_days), _cutoff(now, r.failed_build_days)
    if untagged is not None:
        since = func.coalesce(Build.untagged, Build.completed, Build.created)
        for bid, state, ts, left in s.execute(
                select(Build.id, Build.state, since, Build.untagged).where(
                    Build.state == BuildState.COMPLETE, since < untagged)):
            what = "untagged" if left is not None else "complete and in no tag"
            out.append((bid, state, f"{what} for {(now - ts) / DAY:.1f} days (retention {r.untagged_build_days:g})"))
    if failed is not None:
        ended = func.coalesce(Build.completed, Build.created)
        for bid, state, ts in s.execute(select(Build.id, Build.state, ended).where(
                Build.state.in_((BuildState.FAILED, BuildState.CANCELED)), ended < failed)):
            out.append((bid, state, f"{state} {(now - ts) / DAY:.1f} days ago (retention {r.failed_build_days:g})"))
    return sorted(out)


def mark_deleted(s: Session, r: Retention, now: float, actor: str) -> list[dict[str, Any]]:
    """Mark the builds past their retention deleted and drop their artifact rows."""
    kept = _kept_build_ids(s, now)
    found = [c for c in _candidates(s, r, now) if c[0] not in kept]
    if not found:
        return []
    # lock the rows (PostgreSQL; SQLite's writers are serialized already), then look again: a tag-build or a
    # resubmit that committed meanwhile wins (they lock the build's row too)
    s.execute(select(Build.id).where(Build.id.in_([b for b, _, _ in found])).order_by(Build.id).with_for_update())
    kept = _kept_build_ids(s, now)
    out = []
    for bid, state, why in found:
        if bid in kept:
            continue
        done = s.execute(update(Build).where(Build.id == bid, Build.state == state)
                         .values(state=BuildState.DELETED)).rowcount  # type: ignore[attr-defined]
        if not done:
            continue
        files, size = s.execute(select(func.count(Artifact.id), func.coalesce(func.sum(Artifact.size), 0))
                                .where(Artifact.build_id == bid)).one()
        s.execute(delete(Artifact).where(Artifact.build_id == bid))
        s.execute(update(Task).where(Task.build_id == bid).values(log_tail=""))
        ident = s.scalar(select(Build.ident).where(Build.id == bid)) or str(bid)
        events.record(s, "build.deleted", "build", bid, actor, ident=ident, was=state, why=why)
        out.append({"id": bid, "ident": ident, "was": state, "why": why, "files": int(files), "bytes": int(size)})
    return out


def drop_logs(s: Session, r: Retention, now: float) -> tuple[list[dict[str, Any]], int]:
    """Log files and log tails of tasks that ended before the log retention, of builds in no tag."""
    cutoff = _cutoff(now, r.log_days)
    if cutoff is None:
        return [], 0
    kept = _kept_build_ids(s, now)
    old_tasks = select(Task.id).where(Task.completed < cutoff, Task.build_id.is_not(None),
                                      Task.state.not_in(ACTIVE_TASK_STATES))
    logs = []
    for art, ident in s.execute(select(Artifact, Build.ident).join(Build, Build.id == Artifact.build_id).where(
            Artifact.kind == "log", Artifact.task_id.in_(old_tasks)).order_by(Artifact.id)):
        if art.build_id in kept:
            continue
        logs.append({"build": ident, "task_id": art.task_id, "name": art.name, "size": art.size})
        s.delete(art)
    tails = 0
    for task in s.scalars(select(Task).where(Task.id.in_(old_tasks), Task.log_tail != "")):
        if task.build_id not in kept:
            task.log_tail = ""
            tails += 1
    return logs, tails


def drop_rows(s: Session, r: Retention, now: float) -> dict[str, int]:
    rows = {}
    for table in TABLES:
        cutoff = _cutoff(now, getattr(r, table.days))
        if cutoff is None:
            continue
        stmt = delete(table.ts.class_).where(table.ts < cutoff)
        if table.keep is not None:
            stmt = stmt.where(~table.keep())
        rows[table.name] = int(s.execute(stmt).rowcount)  # type: ignore[attr-defined]
    return rows


def referenced(s: Session) -> set[str]:
    """Every object a live (not deleted) build's artifact or package names."""
    live = select(Build.id).where(Build.state != BuildState.DELETED)
    shas = set(s.scalars(select(Artifact.sha256).where(Artifact.build_id.in_(live)).distinct()))
    shas.update(s.scalars(select(BinaryPackage.sha256).where(BinaryPackage.build_id.in_(live)).distinct()))
    return shas


Recorder = Callable[[Session, dict[str, Any]], None]


def run(db: Database, store: Store, repos: Path, base: Retention, body: GcIn, actor: str,
        record: Recorder | None = None) -> GcReport:
    """One gc (see the module's docstring); 409 when another one is running (any hub process). ``record``
    writes the audit record of a real run in its database transaction (what it changed there)."""
    started = time.monotonic()
    r = effective(base, body)
    now = time.time()
    try:
        with flock(store.root / ".gc.lock", blocking=False):
            return _run(db, store, repos, r, body.dry_run, now, actor, started, record)
    except LockBusy:
        raise Conflict("a gc is running already (another call, maybe from another hub process); try later") from None


def _run(db: Database, store: Store, repos: Path, r: Retention, dry_run: bool, now: float, actor: str,
         started: float, record: Recorder | None = None) -> GcReport:
    with db.sessions() as s:
        s.begin()
        try:
            builds = mark_deleted(s, r, now, actor)
            logs, tails = drop_logs(s, r, now)
            rows = drop_rows(s, r, now)
            live = referenced(s)  # what the database names once this commits
            if record is not None and not dry_run:
                record(s, {"deleted_builds": [None, [b["ident"] for b in builds]], "log_files": [None, len(logs)],
                           "rows_deleted": [None, rows]})
        except BaseException:
            s.rollback()
            raise
        if dry_run:
            s.rollback()
        else:
            s.commit()  # only now may files go: a gc stopped before this point changed nothing
    sweep = StoreSweep(store, live, cutoff=now - max(r.object_grace_days * DAY, MIN_OBJECT_AGE),
                       tmp_cutoff=now - max(r.tmp_days * DAY, MIN_TMP_AGE), repos=repos)
    objects, kept = sweep.objects(remove=not dry_run)
    tmp = sweep.tmp(remove=not dry_run)
    report = GcReport.model_validate({
        "dry_run": dry_run, "retention": retention_json(r), "builds": builds, "logs": logs, "log_tails": tails,
        "objects": [{"sha256": sha, "size": size} for sha, size in objects], "kept_objects": kept,
        "tmp": [{"name": n, "bytes": b} for n, b in tmp], "rows": rows,
        "bytes": sum(size for _, size in objects) + sum(b for _, b in tmp),
        "seconds": round(time.monotonic() - started, 3)})
    if not dry_run:
        log.info("gc by %s: %d builds deleted, %d log files, %d objects, %d tmp leftovers, %d bytes, rows %s",
                 actor, len(builds), len(logs), len(objects), len(tmp), report.bytes, rows)
    return report
