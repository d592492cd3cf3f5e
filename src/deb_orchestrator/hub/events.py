"""The event log: one row per state change, written in the same transaction as the change."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from deb_orchestrator.hub.models import Event


def record(session: Session, kind: str, object_type: str, object_id: int, actor: str = "", **data: Any) -> None:
    session.add(Event(kind=kind, object_type=object_type, object_id=object_id, actor=actor, data=data))
