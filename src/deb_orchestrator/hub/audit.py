"""The audit log: who changed what, when, from where, and what changed (docs/operations.md, docs/security.md).

Every state-changing API call declares its :class:`AuditAction` with its token scope (``auth.require``), which
puts an :class:`Actor` on the request: the token's ID and user, the client's address (clientaddr.py) and the
action. The route then calls :func:`record` inside the database transaction of the change, naming the object and
what changed, so the record commits with the change or not at all. Refused attempts (401, 403) are recorded by
:func:`refused` in a transaction of their own, at most one record per client address, action and status within
``HubSettings.audit_refused_window`` seconds; the record counts the attempts it stands for.

Records never hold secrets: no token (not even its prefix), no password, no key material (an external
repository's key is recorded as its SHA-256), and every value is bounded (:func:`bounded`).
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from sqlalchemy import Table, insert, select, text, update
from sqlalchemy.orm import Session

from deb_orchestrator.hub import clientaddr
from deb_orchestrator.hub.config import HubSettings
from deb_orchestrator.hub.db import Database
from deb_orchestrator.hub.models import AuditRecord, Token, User
from deb_orchestrator.states import AuditAction, AuditOutcome

log = logging.getLogger("deb_orchestrator.hub.audit")
AUDIT: Table = AuditRecord.__table__  # type: ignore[assignment]
_INSERT = insert(AUDIT)
MAX_STRING = 300  # characters of one recorded string
MAX_ITEMS = 50  # items of one recorded list or dict
_USERINFO = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]*@")  # user:password@ in a URL


@dataclass(frozen=True)
class Actor:
    """Who acts, from where, doing what: put on the request by ``auth.require`` (``request.state.audit``)."""

    action: AuditAction
    client: str
    peer: str
    token_id: int | None = None
    user: str | None = None
    via: str = "api"  # "web": an action of the web pages (a signed-in session)


def where(request: Request, settings: HubSettings) -> tuple[str, str]:
    """(client address, peer address) of a request; proxy headers count only from a trusted peer."""
    peer = request.client.host if request.client else None
    header = settings.forwarded_header
    client = clientaddr.client_address(peer, request.headers.getlist(header),
                                       clientaddr.networks(tuple(settings.trusted_proxies)), header)
    return client[:100], str(clientaddr.parse_address(peer or "") or peer or "unknown")[:100]


def actor(request: Request) -> Actor:
    """The request's actor; a route that changes state without ``auth.require(scope, action)`` is a bug."""
    found = getattr(request.state, "audit", None)
    if not isinstance(found, Actor):
        raise RuntimeError(f"{request.url.path}: no audit actor (the route's token check declares none)")
    return found


def bounded(value: Any) -> Any:
    """``value`` fit for a record: credentials in URLs (``user:password@``) replaced by ``***@``, strings cut
    at MAX_STRING characters, lists and dicts at MAX_ITEMS items (a list then ends with ``"… and N more"``)."""
    if isinstance(value, str):
        value = _USERINFO.sub(r"\1***@", value)
        return value if len(value) <= MAX_STRING else value[:MAX_STRING] + "…"
    if isinstance(value, list | tuple):
        items = [bounded(v) for v in value[:MAX_ITEMS]]
        return [*items, f"… and {len(value) - MAX_ITEMS} more"] if len(value) > MAX_ITEMS else items
    if isinstance(value, dict):
        return {str(k)[:MAX_STRING]: bounded(v) for k, v in list(value.items())[:MAX_ITEMS]}
    if value is None or isinstance(value, bool | int | float):
        return value
    return bounded(str(value))


def changed(old: dict[str, Any], new: dict[str, Any]) -> dict[str, list[Any]]:
    """The fields whose values differ, each as ``[old, new]``."""
    return {k: [old.get(k), new.get(k)] for k in {**old, **new} if old.get(k) != new.get(k)}


def created(**new: Any) -> dict[str, list[Any]]:
    return {k: [None, v] for k, v in new.items()}


def removed(**old: Any) -> dict[str, list[Any]]:
    return {k: [v, None] for k, v in old.items()}


def key_digest(key: str | None) -> str | None:
    """What a record says of a key: its SHA-256, never the key."""
    return None if not key else "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def url_digest(url: str) -> dict[str, str]:
    """What a record says of a URL that may carry a credential in its path or query (a chat service's webhook
    URL): its scheme, host and port, and the SHA-256 of the whole URL."""
    scheme, sep, rest = url.partition("://")
    origin = scheme + sep + rest.split("/", 1)[0].split("?", 1)[0].rsplit("@", 1)[-1] if sep else "?"
    return {"url": origin + "/…", "url_sha256": hashlib.sha256(url.encode()).hexdigest()}


def record(session: Session, who: Actor, kind: str, object_id: int | None, name: str | None = None,
           changes: dict[str, Any] | None = None, *, action: AuditAction | None = None) -> None:
    """Record ``who``'s action on an object (``kind``, ID, name) in ``session``'s transaction."""
    session.execute(_INSERT, {
        "ts": time.time(), "action": str(action or who.action), "outcome": AuditOutcome.DONE.value, "status": None,
        "token_id": who.token_id, "user_name": who.user, "client": who.client, "peer": who.peer,
        "object_kind": kind, "object_id": object_id,
        "object_name": None if name is None else str(bounded(str(name)))[:MAX_STRING],
        "changes": bounded(changes or {}), "reason": None, "count": 1, "last_ts": None, "via": who.via,
    })


def _lock_key(*parts: str) -> int:
    """A signed 64-bit key for pg_advisory_xact_lock."""
    return int.from_bytes(hashlib.sha256("\0".join(parts).encode()).digest()[:8], "big", signed=True)


def _token_of(session: Session, token_hash: str | None) -> tuple[int | None, str | None, bool]:
    """(token ID, user, revoked) of a presented token that the hub knows, revoked or not."""
    if token_hash is None:
        return None, None, False
    row = session.execute(select(Token.id, Token.revoked, User.name).join(User, User.id == Token.user_id)
                          .where(Token.token_hash == token_hash)).first()
    return (None, None, False) if row is None else (row.id, row.name, bool(row.revoked))


def refused(db: Database, window: float, who: Actor, status: int, reason: str, *,
            token_hash: str | None = None) -> None:
    """Record a refused attempt (its own transaction): a new record, or one more on the record of the same
    client, action and status made less than ``window`` seconds ago. ``token_hash``: a presented token the
    hub refused (401), so that a known (revoked) token's ID and user are recorded. Never raises: a refusal is
    answered even when it cannot be recorded (logged)."""
    now = time.time()
    try:
        with db.session() as s:
            if not db.is_sqlite:  # one record per window also across hub workers (SQLite serializes writers)
                s.execute(text("SELECT pg_advisory_xact_lock(:k)"),
                          {"k": _lock_key(who.client, who.action, str(status))})
            last = s.execute(select(AUDIT.c.id).where(
                AUDIT.c.outcome == AuditOutcome.REFUSED.value, AUDIT.c.client == who.client,
                AUDIT.c.action == str(who.action), AUDIT.c.status == status, AUDIT.c.ts > now - window,
            ).order_by(AUDIT.c.id.desc()).limit(1)).first()
            if last is not None:
                s.execute(update(AUDIT).where(AUDIT.c.id == last.id).values(count=AUDIT.c.count + 1, last_ts=now))
                return
            token_id, user, revoked = (who.token_id, who.user, False) if who.token_id is not None else \
                _token_of(s, token_hash)
            if revoked:
                reason = f"revoked API token {token_id} ({user})"
            s.execute(_INSERT, {
                "ts": now, "action": str(who.action), "outcome": AuditOutcome.REFUSED.value, "status": status,
                "token_id": token_id, "user_name": user, "client": who.client, "peer": who.peer,
                "object_kind": "", "object_id": None, "object_name": None, "changes": {},
                "reason": bounded(reason), "count": 1, "last_ts": now, "via": who.via,
            })
    except Exception:
        log.exception("could not record a refused %s from %s", who.action, who.client)


def _object_filter(obj: str) -> Any:
    """``KIND`` or ``KIND:NAME`` or ``KIND:ID`` (``build:hello_2.10-3``, ``task:7``, ``host``)."""
    kind, sep, ref = obj.partition(":")
    cond = AUDIT.c.object_kind == kind
    if sep and ref:
        by_id = ref.isascii() and ref.isdigit() and int(ref) < 2**31
        cond = cond & ((AUDIT.c.object_name == ref) | (AUDIT.c.object_id == int(ref)) if by_id
                       else (AUDIT.c.object_name == ref))
    return cond


def query(since: float | None = None, until: float | None = None, user: str | None = None,
          action: str | None = None, obj: str | None = None, before: int | None = None, limit: int = 100) -> Any:
    """The records matching every filter given, newest first; ``before``: only records with a smaller ID
    (the next page after a page whose last record had that ID)."""
    q = select(AuditRecord).order_by(AuditRecord.id.desc()).limit(max(1, min(limit, 1000)))
    if since is not None:
        q = q.where(AuditRecord.ts >= since)
    if until is not None:
        q = q.where(AuditRecord.ts < until)
    if user:
        q = q.where(AuditRecord.user_name == user)
    if action:
        q = q.where(AuditRecord.action == action)
    if obj:
        q = q.where(_object_filter(obj))
    if before is not None:
        q = q.where(AuditRecord.id < before)
    return q


def as_json(r: AuditRecord) -> dict[str, Any]:
    return {"id": r.id, "ts": r.ts, "time": iso(r.ts), "action": r.action, "outcome": r.outcome,
            "status": r.status, "token_id": r.token_id, "user": r.user_name, "client": r.client, "peer": r.peer,
            "object": {"kind": r.object_kind, "id": r.object_id, "name": r.object_name},
            "changes": r.changes or {}, "reason": r.reason, "count": r.count, "last_ts": r.last_ts,
            "via": r.via}


def iso(ts: float) -> str:
    """UTC, ISO 8601 with milliseconds: ``2026-12-05T10:00:00.123Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}Z"


def parse_time(text_value: str, name: str) -> float:
    """Seconds since the epoch from ISO 8601 (no zone: UTC) or a number of seconds; ValueError otherwise."""
    try:
        seconds = float(text_value)
    except ValueError:
        try:
            when = datetime.fromisoformat(text_value.strip())
        except ValueError:
            raise ValueError(f"{name}={text_value!r}: give an ISO 8601 time (2026-12-05T10:00:00Z; UTC without "
                             "a zone) or seconds since the epoch") from None
        seconds = (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()
    if not math.isfinite(seconds):
        raise ValueError(f"{name}={text_value!r}: not a time")
    return seconds
