"""Task scheduling: claims (atomic), leases renewed by heartbeats, fencing tokens, requeue and retries.

A claim hands a free ``buildArch`` task to a host and bumps the task's ``fence``. Every later call
for that attempt (heartbeat, upload, complete) carries the fence; once the lease expired and the task
was requeued (or claimed by another host) the old fence is refused with 409, so a late result from a
builder presumed dead can never overwrite the new attempt.

The hot path (claim, heartbeat, complete) uses SQLAlchemy Core statements on the tables, not ORM
objects: a claim is one ``UPDATE … WHERE id = (SELECT … FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING``
(PostgreSQL; SQLite serializes writers with ``BEGIN IMMEDIATE``), a heartbeat one fenced ``UPDATE``,
a completion one ``SELECT … FOR UPDATE`` and one ``UPDATE`` — each with its event row in the same
transaction. docs/orchestrator-performance.md has the measurements behind this.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Table, bindparam, func, literal_column, or_, select, text, update
from sqlalchemy.orm import Session

from deb_mock.api import RETRYABLE_EXIT_CODES, ExitCode
from deb_orchestrator.hub import builds, events, inheritance, metrics
from deb_orchestrator.hub.errors import Conflict, HubError, NotFound, Stale
from deb_orchestrator.hub.models import Artifact, Build, Host, Task
from deb_orchestrator.hub.store import Store
from deb_orchestrator.states import LEAF_METHODS, TaskMethod, TaskState
from deb_orchestrator.wire import BuildClaim, NoopClaim
from deb_orchestrator.wire.plugins import bound_results
from debarchive.dsc import safe_name

LOG_TAIL_LINES = 400
TASKS: Table = Task.__table__  # type: ignore[assignment]
HOSTS: Table = Host.__table__  # type: ignore[assignment]
ARTIFACTS: Table = Artifact.__table__  # type: ignore[assignment]


@dataclass
class Timing:
    lease_seconds: float
    heartbeat_seconds: float


def _host_alive(host: Host, now: float, lease: float) -> bool:
    return host.enabled and host.last_heartbeat is not None and now - host.last_heartbeat < lease


def claim(session: Session, host: Host, arches: list[str], timing: Timing, *, skip_locked: bool) -> Task | None:
    """Atomically hand the best free task this host can run to it, or return None."""
    now = time.time()
    if host.last_heartbeat is None or now - host.last_heartbeat > 1.0:  # spare a write on busy hubs
        host.last_heartbeat = now
    if not host.enabled:
        return None
    running = session.scalar(select(func.count(Task.id))
                             .where(Task.host_id == host.id, Task.state == TaskState.OPEN)) or 0
    if running >= host.capacity:
        return None
    usable = [a for a in arches if a in host.arches.split()] if arches else host.arches.split()
    query = (
        select(Task)
        .where(Task.state == TaskState.FREE, Task.method.in_(LEAF_METHODS), Task.arch.in_(usable))
        .order_by(Task.priority, Task.id)
        .limit(20)
    )
    if skip_locked:
        query = query.with_for_update(skip_locked=True)
    for task in session.scalars(query):
        if host.id in (task.excluded_hosts or []) and _others_can_run(session, task, host, now, timing):
            continue
        task.state = TaskState.OPEN
        task.host_id = host.id
        task.fence += 1
        task.attempts += 1
        task.started = now
        task.lease_expires = now + timing.lease_seconds
        task.log_tail = ""
        events.record(session, "task.claimed", "task", task.id, host.name, fence=task.fence, attempt=task.attempts)
        if task.attempts == 1:
            metrics.task_started(session, task.arch, now - task.created)
        return task
    return None


def _others_can_run(session: Session, task: Task, host: Host, now: float, timing: Timing) -> bool:
    for other in session.scalars(select(Host).where(Host.id != host.id, Host.enabled.is_(True))):
        if (task.arch in other.arches.split() and other.id not in (task.excluded_hosts or [])
                and _host_alive(other, now, timing.lease_seconds)):
            return True
    return False


# Hot-path statements, built once: SQLAlchemy memoizes a statement object's cache key, so executing a
# prebuilt statement with new parameters skips building it and computing its key (both showed in profiles).
_RUNNING = (select(func.count()).select_from(TASKS)
            .where(TASKS.c.host_id == bindparam("b_host"), TASKS.c.state == TaskState.OPEN).scalar_subquery())
_HOST = select(HOSTS.c.name, HOSTS.c.arches, HOSTS.c.capacity, HOSTS.c.enabled, HOSTS.c.last_heartbeat,
               _RUNNING.label("running")).where(HOSTS.c.id == bindparam("b_host"))
_HOST_LOCKED = _HOST.with_for_update(of=HOSTS)
_FREE_ANY = select(TASKS.c.id).where(TASKS.c.state == TaskState.FREE, TASKS.c.method.in_(LEAF_METHODS),
                                     TASKS.c.arch.in_(bindparam("b_arches", expanding=True))).limit(1)
_BEAT = (update(TASKS).where(TASKS.c.id == bindparam("b_task"), TASKS.c.fence == bindparam("b_fence"),
                             TASKS.c.host_id == bindparam("b_host"), TASKS.c.state == TaskState.OPEN)
         .values(lease_expires=bindparam("b_expires")).returning(TASKS.c.id))
_HOST_BEAT = (update(HOSTS).where(HOSTS.c.id == bindparam("b_host"),
                                  or_(HOSTS.c.last_heartbeat.is_(None), HOSTS.c.last_heartbeat < bindparam("b_stale")))
              .values(last_heartbeat=bindparam("b_now")))
# PostgreSQL: both in one statement (a data-modifying CTE); the host is touched only if the lease was renewed
_BEAT_PG = text(
    "WITH renewed AS (UPDATE tasks SET lease_expires = :b_expires WHERE id = :b_task AND fence = :b_fence "
    f"AND host_id = :b_host AND state = '{TaskState.OPEN}' RETURNING id), "
    "beat AS (UPDATE hosts SET last_heartbeat = :b_now WHERE id = :b_host "
    "AND (last_heartbeat IS NULL OR last_heartbeat < :b_stale) AND EXISTS (SELECT 1 FROM renewed)) "
    "SELECT id FROM renewed")
_T = TypeVar("_T")
_TASK_FOR_COMPLETE = (
    select(TASKS.c.id, TASKS.c.state, TASKS.c.fence, TASKS.c.host_id, TASKS.c.method, TASKS.c.parent_id,
           TASKS.c.attempts, TASKS.c.max_attempts, TASKS.c.excluded_hosts, TASKS.c.started,
           HOSTS.c.name.label("host_name"))
    .select_from(TASKS.outerjoin(HOSTS, TASKS.c.host_id == HOSTS.c.id)).where(TASKS.c.id == bindparam("b_task")))


@functools.cache
def _claim_statement(dialect: str, skip_locked: bool) -> Any:
    """``UPDATE tasks … WHERE id = (SELECT id … ORDER BY priority, id LIMIT 1 [FOR UPDATE SKIP LOCKED])
    RETURNING …``: the best free task this host may run (not one it failed with an infrastructure error)."""
    # the cheap text comparison first: almost every task has no excluded host, and the JSON test on every
    # free row cost PostgreSQL 19 ms per claim with 3,000 tasks queued (3 ms with the comparison first)
    if dialect == "postgresql":
        not_excluded = text("(CAST(tasks.excluded_hosts AS TEXT) = '[]' "
                            "OR NOT (tasks.excluded_hosts::jsonb @> to_jsonb(CAST(:b_excluded AS integer))))")
    else:
        not_excluded = text("(tasks.excluded_hosts = '[]' OR NOT EXISTS (SELECT 1 FROM json_each(tasks.excluded_hosts)"
                            " AS x WHERE x.value = :b_excluded))")
    # the state as a literal, not a bound parameter: a prepared (generic) plan may then use the partial
    # index ix_tasks_free_queue (migration 0002), which sorts the free tasks in this order
    pick = (select(TASKS.c.id)
            .where(TASKS.c.state == literal_column(f"'{TaskState.FREE}'"), TASKS.c.method.in_(LEAF_METHODS),
                   TASKS.c.arch.in_(bindparam("b_arches", expanding=True)), not_excluded)
            .order_by(TASKS.c.priority, TASKS.c.id).limit(1))
    if skip_locked:
        pick = pick.with_for_update(skip_locked=True)
    return (update(TASKS).where(TASKS.c.id == pick.scalar_subquery())
            .values(state=TaskState.OPEN, host_id=bindparam("b_host"), fence=TASKS.c.fence + 1,
                    attempts=TASKS.c.attempts + 1, started=bindparam("b_now"), lease_expires=bindparam("b_expires"),
                    log_tail="")
            .returning(TASKS.c.id, TASKS.c.fence, TASKS.c.attempts, TASKS.c.method, TASKS.c.arch, TASKS.c.created))


def _record(session: Session, kind: str, task_id: int, actor: str, now: float, **data: Any) -> None:
    """events.record for the Core hot path (no ORM object)."""
    events.insert_event(session, kind, "task", task_id, actor, now, data)


def claim_next(session: Session, host_id: int, arches: list[str], timing: Timing, *, skip_locked: bool,
               capacity: int | None = None) -> BuildClaim | NoopClaim | None:
    """Atomically hand the best free task this host can run to it; returns the claim payload or None.

    The host's row is locked first (PostgreSQL) so one host's concurrent claims take turns and cannot
    exceed its capacity; different hosts never wait for each other (``SKIP LOCKED``).
    """
    now = time.time()
    conn = session.connection()
    host = conn.execute(_HOST_LOCKED if skip_locked else _HOST, {"b_host": host_id}).one_or_none()
    if host is None:
        raise NotFound("the host of this token was deleted")
    if host.last_heartbeat is None or now - host.last_heartbeat > 1.0:  # spare a write on busy hubs
        conn.execute(update(HOSTS).where(HOSTS.c.id == host_id).values(last_heartbeat=now))
    if not host.enabled:
        return None
    # a builder may ask for fewer tasks than its host's capacity, never more: the capacity is the admin's
    # (add-host --capacity, PATCH /hosts/NAME), not the builder's to raise
    limit = min(capacity, host.capacity) if capacity else host.capacity
    if (host.running or 0) >= limit:
        return None
    host_arches = host.arches.split()
    usable = [a for a in arches if a in host_arches] if arches else host_arches
    if not usable:
        return None
    row = conn.execute(_claim_statement(conn.dialect.name, skip_locked),
                       {"b_arches": usable, "b_excluded": host_id, "b_host": host_id, "b_now": now,
                        "b_expires": now + timing.lease_seconds}).one_or_none()
    if row is None:
        if conn.execute(_FREE_ANY, {"b_arches": usable}).first() is None:
            return None
        # only tasks this host failed with an infrastructure error are left: it gets one of them only
        # when no other alive host can run it (the ORM path below decides that; rare)
        orm_host = session.get(Host, host_id)
        assert orm_host is not None
        task = claim(session, orm_host, arches, timing, skip_locked=skip_locked)
        return None if task is None else claim_payload(session, task, timing)
    _record(session, "task.claimed", row.id, host.name, now, fence=row.fence, attempt=row.attempts)
    if row.attempts == 1:
        metrics.task_started(session, row.arch, now - row.created)
    if row.method == TaskMethod.NOOP:
        return NoopClaim(task_id=row.id, fence=row.fence, attempt=row.attempts, method=TaskMethod.NOOP, arch=row.arch,
                         lease_seconds=timing.lease_seconds, heartbeat_seconds=timing.heartbeat_seconds)
    task = session.get(Task, row.id)
    assert task is not None
    return claim_payload(session, task, timing)


def _current(task: _T | None, task_id: int, fence: int, host_id: int | None) -> _T:
    """``task`` (a Task or a row), refusing a call from an attempt that is no longer the task's current one."""
    if task is None:
        raise NotFound(f"no task {task_id}")
    t: Any = task  # Task and the row of _TASK_FOR_COMPLETE both carry fence, host_id and state
    if t.fence != fence or t.host_id != host_id or t.state != TaskState.OPEN:
        raise Stale(
            f"task {task_id}: attempt {fence} is no longer current (task is {t.state}, attempt {t.fence}); "
            "its lease expired or it was canceled — drop this work"
        )
    return task


def _attempt(session: Session, task_id: int, fence: int, host_id: int | None) -> Task:
    return _current(session.get(Task, task_id), task_id, fence, host_id)


def heartbeat(session: Session, task_id: int, fence: int, host_id: int | None, lines: list[str],
              timing: Timing) -> dict[str, Any]:
    now = time.time()
    if not lines:  # the common case: one fenced UPDATE renews the lease
        conn = session.connection()
        params = {"b_task": task_id, "b_fence": fence, "b_host": host_id, "b_expires": now + timing.lease_seconds,
                  "b_stale": now - 1.0, "b_now": now}
        if conn.dialect.name == "postgresql":
            renewed = conn.execute(_BEAT_PG, params).first()
        else:
            renewed = conn.execute(_BEAT, params).first()
            if renewed is not None and host_id is not None:  # writes only when the heartbeat is over a second old
                conn.execute(_HOST_BEAT, params)
        if renewed is not None:
            return {"cancel": False, "lease_expires": now + timing.lease_seconds}
    task = session.get(Task, task_id)
    if task is not None and task.state == TaskState.CANCELED and task.fence == fence and task.host_id == host_id:
        return {"cancel": True, "lease_expires": None}
    task = _attempt(session, task_id, fence, host_id)
    task.lease_expires = now + timing.lease_seconds
    if task.host is not None:
        task.host.last_heartbeat = now
    if lines:
        tail = (task.log_tail.splitlines() if task.log_tail else []) + [line.rstrip("\n") for line in lines]
        task.log_tail = "\n".join(tail[-LOG_TAIL_LINES:])
    return {"cancel": False, "lease_expires": task.lease_expires}


def kind_of(name: str) -> str:
    if name.endswith((".deb", ".udeb")):
        return "deb"
    if name.endswith(".log"):
        return "log"
    if name.endswith(".buildinfo"):
        return "buildinfo"
    if name.endswith(".changes"):
        return "changes"
    if name == "result.json":
        return "result"
    return "other"


def check_upload_name(name: str) -> str:
    try:
        return safe_name(name, "upload file name")
    except ValueError as exc:
        raise HubError(f"{exc}; path components and '..' are refused", 400) from None


def add_artifact(session: Session, task: Task, name: str, sha256: str, size: int) -> Artifact:
    if task.build_id is None:
        raise HubError(f"task {task.id} belongs to no build")
    art = session.scalar(select(Artifact).where(
        Artifact.build_id == task.build_id, Artifact.task_id == task.id, Artifact.name == name))
    if art is None:
        art = Artifact(build_id=task.build_id, task_id=task.id, name=name, kind=kind_of(name), sha256=sha256,
                       size=size)
        session.add(art)
    else:
        art.sha256, art.size = sha256, size
    return art


def complete(session: Session, store: Store, task_id: int, fence: int, host_id: int | None,
             result: dict[str, Any], max_attempts: int) -> dict[str, Any]:
    """Record a deb-mock result (result.json) for an attempt; returns what became of task and build."""
    conn = session.connection()
    task = _current(conn.execute(_TASK_FOR_COMPLETE, {"b_task": task_id}).one_or_none(), task_id, fence, host_id)
    if task.parent_id is not None:
        # siblings finishing at the same moment take turns, so exactly one of them sees all of them done
        session.get(Task, task.parent_id, with_for_update=True, populate_existing=True)
    code = int(result.get("exit_code", ExitCode.INFRA_ERROR))
    now = time.time()
    plugins = bound_results(result.pop("plugins", None)) if task.method != TaskMethod.NOOP else None
    values: dict[str, Any] = {"result": result, "buildroot": result.get("buildroot") or [], "lease_expires": None,
                              "plugins": plugins}
    requeued = False
    if code == ExitCode.SUCCESS and task.method == TaskMethod.NOOP:
        values["state"] = TaskState.CLOSED
    elif code == ExitCode.SUCCESS:
        uploaded = {a.name: a for a in conn.execute(
            select(ARTIFACTS.c.name, ARTIFACTS.c.sha256, ARTIFACTS.c.kind).where(ARTIFACTS.c.task_id == task_id))}
        for f in result.get("files", []):
            art = uploaded.get(f.get("name", ""))
            if art is None or art.sha256 != f.get("sha256"):
                raise Conflict(f"task {task_id}: result names {f.get('name')} ({f.get('sha256')}) but it was not "
                               "uploaded with that checksum; upload every file before completing")
        if not any(a.kind == "deb" for a in uploaded.values()):
            raise Conflict(f"task {task_id}: a successful build must upload at least one .deb")
        values.update(state=TaskState.CLOSED, error=None)
    elif code == ExitCode.DEP_WAIT:
        values.update(state=TaskState.DEP_WAIT, missing=result.get("missing") or [],
                      error=result.get("error") or "build-dependencies cannot be satisfied")
    elif code in RETRYABLE_EXIT_CODES:
        excluded = list(task.excluded_hosts or [])
        if task.host_id is not None and task.host_id not in excluded:
            excluded.append(task.host_id)
        values.update(excluded_hosts=excluded, error=result.get("error") or f"infrastructure error (exit {code})")
        requeued = task.attempts < max(task.max_attempts, 1)
        values["state"] = TaskState.FREE if requeued else TaskState.FAILED
    else:
        values.update(state=TaskState.FAILED, error=result.get("error") or f"build failed (exit {code})")
    if requeued:
        values["host_id"] = None
    else:
        values["completed"] = now
    # the fence in the WHERE clause makes this exact even if the row changed since the SELECT above
    done = conn.execute(
        update(TASKS).where(TASKS.c.id == task_id, TASKS.c.fence == fence, TASKS.c.host_id == host_id,
                            TASKS.c.state == TaskState.OPEN).values(**values).returning(TASKS.c.id)
    ).first()
    if done is None:
        raise Stale(f"task {task_id}: attempt {fence} is no longer current (the task changed meanwhile); "
                    "drop this work")
    _record(session, f"task.{'requeued' if requeued else values['state']}", task_id, task.host_name or "?", now,
            exit_code=code, error=values.get("error"), attempt=task.attempts)
    metrics.task_finished(session, metrics.result_of(code), now - (task.started or now))
    build_state = None
    if task.parent_id is not None and (parent := session.get(Task, task.parent_id)) is not None:
        build_state = builds.finish_parent(session, store, parent)
    return {"task": task_id, "state": values["state"], "requeued": requeued, "build_state": build_state}


def release(session: Session, task_id: int, fence: int, host_id: int | None, reason: str) -> None:
    """A builder hands a task back (e.g. on SIGTERM): it is requeued at once, not counted as an attempt."""
    task = _attempt(session, task_id, fence, host_id)
    task.state = TaskState.FREE
    task.host_id = None
    task.lease_expires = None
    task.attempts = max(task.attempts - 1, 0)
    events.record(session, "task.released", "task", task.id, "builder", reason=reason)


def reap(session: Session) -> list[int]:
    """Requeue open tasks whose lease expired (their builder stopped heartbeating)."""
    now = time.time()
    expired = list(session.scalars(
        select(Task).where(Task.state == TaskState.OPEN, Task.method.in_(LEAF_METHODS), Task.lease_expires < now)
    ))
    for task in expired:
        host = task.host.name if task.host else "?"
        task.state = TaskState.FREE
        task.host_id = None
        task.lease_expires = None
        task.error = f"lease expired: builder {host} stopped heartbeating"
        metrics.task_finished(session, "lost", now - (task.started or now))
        events.record(session, "task.requeued", "task", task.id, "hub", reason=task.error)
    return [t.id for t in expired]


def claim_payload(session: Session, task: Task, timing: Timing) -> BuildClaim | NoopClaim:
    """Everything a builder needs: the source files, the buildroot's apt sources, the attempt's fence."""
    if task.method == TaskMethod.NOOP:
        return NoopClaim(task_id=task.id, fence=task.fence, attempt=task.attempts, method=TaskMethod.NOOP,
                         arch=task.arch, lease_seconds=timing.lease_seconds,
                         heartbeat_seconds=timing.heartbeat_seconds)
    build = session.get(Build, task.build_id)
    if build is None or build.target is None:
        raise HubError(f"task {task.id} has no build or target")
    build_tag = build.target.build_tag
    externals = inheritance.external_repos(session, build_tag.id)
    files = [
        {"name": a.name, "sha256": a.sha256, "size": a.size, "url": f"/api/v1/builds/{build.id}/files/{a.name}"}
        for a in session.scalars(select(Artifact).where(Artifact.build_id == build.id, Artifact.kind == "source"))
    ]
    dsc = next((str(f["name"]) for f in files if str(f["name"]).endswith(".dsc")), None)
    return BuildClaim.model_validate({
        "task_id": task.id,
        "method": task.method,
        "fence": task.fence,
        "attempt": task.attempts,
        "build_id": build.id,
        "build": build.ident,
        "source": build.source,
        "version": build.version,
        "arch": task.arch,
        "build_what": task.build_what,
        "dsc": dsc,
        "files": files,
        "build_tag": build_tag.name,
        "tag_repo": {"path": f"/repos/{build_tag.name}", "suite": build_tag.name, "components": ["main"],
                     "key_path": f"/repos/{build_tag.name}/key.asc"},
        "external_repos": [
            {"url": e.url, "suite": e.suite, "components": e.components.split(), "key": e.key} for e in externals
        ],
        "lease_seconds": timing.lease_seconds,
        "heartbeat_seconds": timing.heartbeat_seconds,
        "plugins": build.plugins or {},
        "disable_plugins": build.disable_plugins or [],
    })


def create_noop(session: Session, count: int, arch: str, owner: str, priority: int) -> list[int]:
    """Leaf tasks that do nothing: builders claim and close them at once (scheduler tests, benchmarks)."""
    tasks = [Task(method=TaskMethod.NOOP, arch=arch, state=TaskState.FREE, owner=owner, priority=priority)
             for _ in range(count)]
    session.add_all(tasks)
    session.flush()
    return [t.id for t in tasks]
