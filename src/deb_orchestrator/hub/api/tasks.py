"""Tasks: browsing, cancel, and the builder protocol (claim, heartbeat, upload, complete, release).

The builder protocol is the hub's hot path: its answers are written with orjson straight into a
``Response`` (no FastAPI response encoding), and ``complete-and-claim`` reports a result and claims the
next task in one request, halving a busy builder's requests.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse
from sqlalchemy import func, select

from deb_orchestrator.hub import actions, audit, builds, packages, scheduler
from deb_orchestrator.hub.api.common import file_response, hub_of, task_json
from deb_orchestrator.hub.auth import Principal, require
from deb_orchestrator.hub.errors import HubError, NotFound
from deb_orchestrator.hub.models import Artifact, Task
from deb_orchestrator.hub.service import Hub
from deb_orchestrator.hub.store import ChecksumMismatch
from deb_orchestrator.states import AuditAction, BuildState, TaskState
from deb_orchestrator.wire import (
    BuildClaim,
    CancelOut,
    Claim,
    ClaimIn,
    CompleteAndClaimIn,
    CompleteAndClaimOut,
    CompleteIn,
    CompleteOut,
    HeartbeatIn,
    HeartbeatOut,
    NoopClaim,
    NoopIn,
    NoopOut,
    ReleaseIn,
    ReleaseOut,
    TaskDetail,
    TaskOut,
    UploadOut,
)

router = APIRouter(prefix="/tasks", tags=["tasks"])


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def _host_id(who: Principal) -> int:
    if who.host_id is None:
        raise HubError("this token belongs to no host; builders use the token printed by add-host", 403)
    return who.host_id


@router.get("", summary="List tasks (newest first)", response_model=list[TaskOut])
def list_tasks(request: Request, state: str | None = None, method: str | None = None,
               limit: int = 100) -> list[dict[str, Any]]:
    with hub_of(request).db.session() as s:
        q = select(Task).order_by(Task.id.desc()).limit(max(1, min(limit, 1000)))
        if state:
            q = q.where(Task.state == state)
        if method:
            q = q.where(Task.method == method)
        return [task_json(t) for t in s.scalars(q)]


@router.get("/{task_id}", summary="Show a task with its subtasks, result and buildroot", response_model=TaskDetail)
def get_task(task_id: int, request: Request) -> dict[str, Any]:
    with hub_of(request).db.session() as s:
        t = builds.get_task(s, task_id)
        files = s.scalars(select(Artifact).where(Artifact.task_id == t.id).order_by(Artifact.id))
        return {**task_json(t, full=True), "children": [task_json(c) for c in builds.children(s, t.id)],
                "files": [{"name": f.name, "kind": f.kind, "sha256": f.sha256, "size": f.size} for f in files]}


@router.get("/{task_id}/log", response_class=PlainTextResponse, summary="The live log tail of a running task")
def log_tail(task_id: int, request: Request) -> str:
    with hub_of(request).db.session() as s:
        return builds.get_task(s, task_id).log_tail


@router.post("/{task_id}/cancel", summary="Cancel a task and its whole tree (scope build; your own, admins any)",
             response_model=CancelOut)
def cancel(task_id: int, request: Request,
           who: Principal = Depends(require("build", AuditAction.TASK_CANCEL))) -> dict[str, Any]:
    return actions.cancel_task(hub_of(request), who, audit.actor(request), task_id)


@router.post("/noop", status_code=201, summary="Queue no-op leaf tasks (scope admin; scheduler tests)",
             response_model=NoopOut)
def noop(body: NoopIn, request: Request,
         who: Principal = Depends(require("admin", AuditAction.TASK_NOOP))) -> dict[str, Any]:
    hub = hub_of(request)
    with hub.db.session() as s:
        ids = scheduler.create_noop(s, body.count, body.arch, who.user, body.priority)
        audit.record(s, audit.actor(request), "task", ids[0] if ids else None, None,
                     audit.created(tasks=ids, arch=body.arch, priority=body.priority))
    hub.work.notify()
    return {"tasks": ids}


def _try_claim(hub: Hub, host_id: int, body: ClaimIn, who: audit.Actor) -> BuildClaim | NoopClaim | None:
    with hub.db.session() as s:
        got = scheduler.claim_next(s, host_id, body.arches, hub.timing, skip_locked=not hub.db.is_sqlite,
                                   capacity=body.capacity)
        if got is not None:
            audit.record(s, who, "task", got.task_id, None,
                         {"state": [TaskState.FREE, TaskState.OPEN], "host": [None, who.user],
                          "fence": [got.fence - 1, got.fence]}, action=AuditAction.TASK_CLAIM)
        return got


async def _long_poll(hub: Hub, host_id: int, body: ClaimIn, request: Request,
                     seen: int | None = None) -> BuildClaim | NoopClaim | None:
    """Claim, waiting up to ``body.wait`` seconds for work. ``seen``: a claim already found nothing at this
    work generation (skip the first attempt)."""
    deadline = time.monotonic() + body.wait
    while True:
        if seen is None:
            seen = hub.work.generation
            payload = await run_in_threadpool(_try_claim, hub, host_id, body, audit.actor(request))
            if payload is not None:
                return payload
        remaining = deadline - time.monotonic()
        if remaining <= 0 or await request.is_disconnected():
            return None
        # woken at once by new work in this process, or in another hub process (PostgreSQL LISTEN/NOTIFY);
        # re-checked every second anyway
        await hub.work.wait(seen, min(remaining, 1.0))
        seen = None
        await asyncio.sleep(0)


@router.post("/claim", summary="Long-poll for a task (scope builder); 204 when none came within `wait`",
             responses={204: {"description": "no task"}}, response_model=Claim)
async def claim(body: ClaimIn, request: Request,
                who: Principal = Depends(require("builder", AuditAction.TASK_CLAIM))) -> Response:
    hub = hub_of(request)
    payload = await _long_poll(hub, _host_id(who), body, request)
    return Response(status_code=204) if payload is None else _json(payload.model_dump())


@router.post("/{task_id}/heartbeat", summary="Renew the lease and send new log lines (scope builder)",
             response_model=HeartbeatOut)
def heartbeat(task_id: int, body: HeartbeatIn, request: Request,  # not recorded when accepted: a lease renewal
              who: Principal = Depends(require("builder", AuditAction.TASK_HEARTBEAT))) -> Response:
    hub = hub_of(request)
    with hub.db.session() as s:
        return _json(scheduler.heartbeat(s, task_id, body.fence, _host_id(who), body.log, hub.timing))


@router.put("/{task_id}/files/{name}", status_code=201,
            summary="Upload a result file (raw body; scope builder). Query: fence, sha256", response_model=UploadOut)
async def upload(task_id: int, name: str, fence: int, sha256: str, request: Request,
                 who: Principal = Depends(require("builder", AuditAction.TASK_UPLOAD))) -> dict[str, Any]:
    hub = hub_of(request)
    host_id = _host_id(who)
    scheduler.check_upload_name(name)
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256.lower()):
        raise HubError(f"sha256 must be 64 hex digits, got {sha256!r}")

    def check() -> tuple[packages.Expected | None, int]:
        with hub.db.session() as s:
            task = scheduler._attempt(s, task_id, fence, host_id)
            used = s.scalar(select(func.coalesce(func.sum(Artifact.size), 0))
                            .where(Artifact.task_id == task_id, Artifact.name != name)) or 0
            return packages.expected_for(s, task, name), int(used)

    expected, used = await run_in_threadpool(check)
    task_room = hub.settings.max_task_bytes - used  # all files of one task together
    limit = min(hub.settings.max_upload_bytes, task_room)
    why = (f"the hub's upload limit of {packages.mib(limit)}" if limit == hub.settings.max_upload_bytes else
           f"what is left of the hub's limit of {packages.mib(hub.settings.max_task_bytes)} for the files of "
           f"one task ({used} bytes uploaded already)")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise HubError(f"{name}: {declared} bytes is over {why}", 413)
    fd, tmp_name = tempfile.mkstemp(dir=hub.store.root / "tmp", prefix="upload-")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            received = 0
            async for chunk in request.stream():  # counted while it arrives: nothing past the limit is kept
                received += len(chunk)
                if received > limit:
                    raise HubError(f"{name}: more than {why}", 413)
                out.write(chunk)
        if expected is not None:  # a .deb: its members and control fields are checked before it is stored
            await run_in_threadpool(packages.inspect_deb, tmp, name, expected, sha256.lower(), hub.deb_limits)
        digest, size = await run_in_threadpool(hub.store.put_file, tmp, sha256.lower())
    except ChecksumMismatch as exc:
        raise HubError(f"{name}: {exc}", 400) from None
    finally:
        tmp.unlink(missing_ok=True)

    actor = audit.actor(request)

    def record() -> dict[str, Any]:
        with hub.db.session() as s:
            task = scheduler._attempt(s, task_id, fence, host_id)
            old = s.execute(select(Artifact.sha256, Artifact.size).where(
                Artifact.task_id == task_id, Artifact.name == name)).first()
            scheduler.add_artifact(s, task, name, digest, size)
            audit.record(s, actor, "task", task_id, None, {name: [
                None if old is None else {"sha256": old.sha256, "size": old.size}, {"sha256": digest, "size": size}]})
        return {"name": name, "sha256": digest, "size": size}

    return await run_in_threadpool(record)


@router.get("/{task_id}/files/{name}", summary="Download a file uploaded by a task (e.g. build.log)")
def download(task_id: int, name: str, request: Request) -> Any:
    hub = hub_of(request)
    with hub.db.session() as s:
        art = s.scalar(select(Artifact).where(Artifact.task_id == task_id, Artifact.name == name))
        if art is None:
            raise NotFound(f"task {task_id} has no file {name!r}")
        sha = art.sha256
    return file_response(hub.store.path(sha), name)


def _complete(hub: Hub, task_id: int, body: CompleteIn, host_id: int, who: audit.Actor) -> dict[str, Any]:
    with hub.db.session() as s:
        result = body.result.model_dump(exclude_none=True)
        out = scheduler.complete(s, hub.store, task_id, body.fence, host_id, result, hub.settings.max_attempts)
        audit.record(s, who, "task", task_id, None,
                     {"state": [TaskState.OPEN, out["state"]],
                      "result": [None, {"state": result.get("state"), "exit_code": result.get("exit_code")}]},
                     action=AuditAction.TASK_COMPLETE)
    if out["requeued"]:
        hub.work.notify()
    if out["build_state"] == BuildState.COMPLETE:
        hub.repos_dirty()
    return out


@router.post("/{task_id}/complete", summary="Report deb-mock's result for this attempt (scope builder)",
             response_model=CompleteOut)
def complete(task_id: int, body: CompleteIn, request: Request,
             who: Principal = Depends(require("builder", AuditAction.TASK_COMPLETE))) -> Response:
    return _json(_complete(hub_of(request), task_id, body, _host_id(who), audit.actor(request)))


@router.post("/{task_id}/complete-and-claim",
             summary="Report this attempt's result, then claim the next task (scope builder)",
             description="One request for a builder's `complete` followed by `claim`: the result is recorded "
                         "(and committed) first, exactly as `complete` does — a stale fence is refused with 409 "
                         "and nothing is claimed — then the next task is claimed as `claim` does, waiting up "
                         "to `next.wait` seconds. Answers `{\"completed\": …, \"next\": payload or null}`.",
                         response_model=CompleteAndClaimOut)
async def complete_and_claim(task_id: int, body: CompleteAndClaimIn, request: Request,
                             who: Principal = Depends(require("builder", AuditAction.TASK_COMPLETE))) -> Response:
    hub = hub_of(request)
    host_id = _host_id(who)
    actor = audit.actor(request)

    def both() -> tuple[dict[str, Any], int, BuildClaim | NoopClaim | None]:
        done = _complete(hub, task_id, body, host_id, actor)
        seen = hub.work.generation
        return done, seen, _try_claim(hub, host_id, body.next, actor)

    done, seen, nxt = await run_in_threadpool(both)
    if nxt is None and body.next.wait > 0:
        nxt = await _long_poll(hub, host_id, body.next, request, seen=seen)
    return _json({"completed": done, "next": None if nxt is None else nxt.model_dump()})


@router.post("/{task_id}/release", summary="Hand a task back to the queue (builder stopping; scope builder)",
             response_model=ReleaseOut)
def release(task_id: int, body: ReleaseIn, request: Request,
            who: Principal = Depends(require("builder", AuditAction.TASK_RELEASE))) -> dict[str, Any]:
    hub = hub_of(request)
    with hub.db.session() as s:
        scheduler.release(s, task_id, body.fence, _host_id(who), body.reason)
        audit.record(s, audit.actor(request), "task", task_id, None,
                     {"state": [TaskState.OPEN, TaskState.FREE], "host": [who.user, None],
                      "reason": [None, body.reason]})
    hub.work.notify()
    return {"task": task_id, "state": TaskState.FREE}
