"""Helpers shared by the routers: the hub from the request, and JSON shapes of the main objects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import FileResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from deb_orchestrator.hub import inheritance
from deb_orchestrator.hub.models import Build, ExternalRepo, Host, Tag, Target, Task
from deb_orchestrator.hub.service import Hub
from deb_orchestrator.states import TaskState

TEXT_SUFFIXES = (".log", ".buildinfo", ".changes", ".json", ".txt")
SAFE_HEADERS = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox; default-src 'none'"}


def file_response(path: Path, name: str) -> FileResponse:
    """A stored file (uploaded by a user or a builder: untrusted) with a type no browser renders as a page:
    logs and other text as text/plain, everything else application/octet-stream as a download; never sniffed."""
    if name.endswith(TEXT_SUFFIXES):
        return FileResponse(path, filename=name, media_type="text/plain; charset=utf-8", headers=SAFE_HEADERS,
                            content_disposition_type="inline")
    return FileResponse(path, filename=name, media_type="application/octet-stream", headers=SAFE_HEADERS)


def hub_of(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


def build_json(s: Session, b: Build) -> dict[str, Any]:
    return {
        "id": b.id, "ident": b.ident, "source": b.source, "version": b.version, "state": b.state,
        "owner": b.owner, "requested_by": b.requested_by, "target": b.target.name if b.target else None,
        "task_id": b.task_id, "architectures": b.architectures, "created": b.created, "completed": b.completed,
        "source_trust": b.source_trust or None, "source_verified": b.source_trust not in ("", "none"),
        "source_verification": b.source_verification or None,
    }


def task_json(t: Task, *, full: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": t.id, "parent_id": t.parent_id, "build_id": t.build_id, "method": t.method, "arch": t.arch,
        "build_what": t.build_what, "state": t.state, "priority": t.priority, "owner": t.owner,
        "host": t.host.name if t.host else None, "attempts": t.attempts, "max_attempts": t.max_attempts,
        "error": t.error, "created": t.created, "started": t.started, "completed": t.completed,
        "missing": t.missing or [],
    }
    if full:
        data.update(result=t.result, buildroot=t.buildroot or [], fence=t.fence, lease_expires=t.lease_expires,
                    log_tail=t.log_tail, plugins=t.plugins or {})
    return data


def tag_json(s: Session, t: Tag) -> dict[str, Any]:
    parent_ids = inheritance.parents(s, t.id)
    externals = s.scalars(select(ExternalRepo).where(ExternalRepo.tag_id == t.id).order_by(ExternalRepo.priority))
    return {
        "id": t.id, "name": t.name, "arches": t.arches.split(), "parents": inheritance.names(s, parent_ids),
        "inheritance": inheritance.names(s, inheritance.order(s, t.id)),
        "external_repos": [{"url": e.url, "suite": e.suite, "components": e.components.split(),
                            "has_key": bool(e.key)} for e in externals],
        "created": t.created,
    }


def target_json(t: Target) -> dict[str, Any]:
    return {"id": t.id, "name": t.name, "build_tag": t.build_tag.name, "dest_tag": t.dest_tag.name,
            "plugins": t.plugins or {}, "request_plugins": t.request_plugins or [], "policy": t.policy or {},
            "disable_plugins": t.disable_plugins or []}


def host_json(s: Session, h: Host) -> dict[str, Any]:
    running = list(s.scalars(select(Task.id).where(Task.host_id == h.id, Task.state == TaskState.OPEN)))
    return {"id": h.id, "name": h.name, "arches": h.arches.split(), "capacity": h.capacity, "enabled": h.enabled,
            "last_heartbeat": h.last_heartbeat, "running": running}
