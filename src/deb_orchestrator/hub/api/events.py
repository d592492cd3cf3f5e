"""The event log: every state change, in order (``after`` for incremental reading)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import select

from deb_orchestrator.hub.api.common import hub_of
from deb_orchestrator.hub.models import Event
from deb_orchestrator.wire import EventOut

router = APIRouter(prefix="/events", tags=["events"])


@router.get("", summary="Events after an ID (oldest first)", response_model=list[EventOut])
def list_events(request: Request, after: int = 0, limit: int = 200, object_type: str | None = None,
                object_id: int | None = None) -> list[dict[str, Any]]:
    with hub_of(request).db.session() as s:
        q = select(Event).where(Event.id > after).order_by(Event.id).limit(max(1, min(limit, 5000)))
        if object_type:
            q = q.where(Event.object_type == object_type)
        if object_id is not None:
            q = q.where(Event.object_id == object_id)
        return [{"id": e.id, "ts": e.ts, "kind": e.kind, "object_type": e.object_type, "object_id": e.object_id,
                 "actor": e.actor, "data": e.data} for e in s.scalars(q)]
