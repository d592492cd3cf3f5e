"""The event log: one row per state change, written in the same transaction as the change.

Each event is also put into the webhooks' outbox in that transaction (one ``INSERT … SELECT`` over the
webhooks whose patterns match; nothing when there are none), so a committed event is never lost to a crash
before its deliveries are sent (webhooks.py sends them). A transaction that recorded an event says so in
``Session.info``; the database layer wakes the event streams after its commit (db.py ``on_events``).
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from sqlalchemy import Integer, String, Table, bindparam, cast, insert, literal, or_, select
from sqlalchemy.orm import Session

from deb_orchestrator.hub.db import EVENTS_RECORDED
from deb_orchestrator.hub.models import Event, Webhook, WebhookDelivery

EVENTS: Table = Event.__table__  # type: ignore[assignment]
WEBHOOKS: Table = Webhook.__table__  # type: ignore[assignment]
DELIVERIES: Table = WebhookDelivery.__table__  # type: ignore[assignment]

_INSERT = insert(EVENTS).returning(EVENTS.c.id)
_OUTBOX = insert(DELIVERIES).from_select(
    ["webhook_id", "event_id", "key", "kind", "body", "state", "attempts", "next_attempt", "created"],
    select(WEBHOOKS.c.id, bindparam("b_event", type_=Integer), bindparam("b_key", type_=String) + cast(WEBHOOKS.c.id,
                                                                                                     String),
           bindparam("b_kind", type_=String), bindparam("b_body", type_=String), literal("pending"), literal(0),
           bindparam("b_now"), bindparam("b_now"))
    .where(WEBHOOKS.c.enabled.is_(True),
           or_(WEBHOOKS.c.events.like(bindparam("b_exact")), WEBHOOKS.c.events.like(bindparam("b_family")),
               WEBHOOKS.c.events.like("%,*,%"))))


def event_json(e: Any) -> dict[str, Any]:
    """The API's shape of an event (an Event or a row with its columns)."""
    return {"id": e.id, "ts": e.ts, "kind": e.kind, "object_type": e.object_type, "object_id": e.object_id,
            "actor": e.actor, "data": e.data}


def record(session: Session, kind: str, object_type: str, object_id: int, actor: str = "", **data: Any) -> int:
    """Record an event (and its webhook deliveries) in the session's transaction; returns its id."""
    return insert_event(session, kind, object_type, object_id, actor, time.time(), data)


def insert_event(session: Session, kind: str, object_type: str, object_id: int, actor: str, ts: float,
                 data: dict[str, Any]) -> int:
    conn = session.connection()
    row = {"ts": ts, "kind": kind, "object_type": object_type, "object_id": object_id, "actor": actor, "data": data}
    event_id = int(conn.execute(_INSERT, row).scalar_one())
    body = json.dumps({"id": event_id, **row}, sort_keys=True, separators=(",", ":"))
    conn.execute(_OUTBOX, {"b_event": event_id, "b_key": f"{uuid.uuid4().hex}-", "b_kind": kind, "b_body": body,
                           "b_now": ts, "b_exact": f"%,{kind},%", "b_family": f"%,{kind.split('.', 1)[0]}.*,%"})
    session.info[EVENTS_RECORDED] = True
    return event_id
