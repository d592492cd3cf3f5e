"""``GET /api/v1/events/stream``: the event table as Server-Sent Events (docs/operations.md).

Event ids are allocated when a row is inserted, not when its transaction commits: on PostgreSQL event 11 can
become visible before event 10. A stream therefore keeps a cursor of two parts: ``top``, the highest id it has
looked at, and the *gaps*, ids below ``top`` that were not visible yet. Every read asks for ``id > top`` and for
the gaps again; a gap that shows up is sent then, one still missing after :data:`GAP_GRACE` seconds is given up
(a rolled-back transaction leaves a gap for ever). The cursor travels as the SSE ``id`` (``TOP`` or
``TOP:GAP,GAP…``), so a client that reconnects with ``Last-Event-ID`` resumes without losing such an event.
A new stream (no ``Last-Event-ID``) starts at the newest event and treats the ids missing among the last
:data:`START_WINDOW` as gaps, for the same reason.

Streams are async generators: an open stream holds no request thread; each read is one short query in the
thread pool, done when an event was committed in this process or (PostgreSQL, LISTEN/NOTIFY) in another hub
process, and at least every :data:`IDLE_POLL` seconds, at most every :data:`MIN_INTERVAL` (so a stream costs
at most four queries a second however busy the hub is). Heartbeats are SSE comments.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread
from sqlalchemy import ColumnElement, Table, and_, case, func, literal, or_, select, true

from deb_orchestrator.hub.db import Database
from deb_orchestrator.hub.errors import HubError
from deb_orchestrator.hub.events import EVENTS, event_json
from deb_orchestrator.hub.models import Repo, Task
from deb_orchestrator.hub.notify import Signal

TASKS: Table = Task.__table__  # type: ignore[assignment]
REPOS: Table = Repo.__table__  # type: ignore[assignment]
GAP_GRACE = 120.0  # seconds an id below the newest one is waited for (a transaction still open, or rolled back)
MAX_GAPS = 1000
START_WINDOW = 200  # a new stream re-checks this many ids below the newest one
BATCH = 500
IDLE_POLL = 5.0  # seconds between reads when nothing woke the stream (1 s while gaps are open)
MIN_INTERVAL = 0.25  # seconds at least between two reads of one stream: a busy hub's commits are read in batches


@dataclass
class Cursor:
    top: int = 0
    gaps: dict[int, float] = field(default_factory=dict)  # id -> when it was first found missing (monotonic)

    def token(self) -> str:
        return f"{self.top}:{','.join(map(str, sorted(self.gaps)))}" if self.gaps else str(self.top)

    @classmethod
    def parse(cls, text: str) -> Cursor:
        """``TOP`` or ``TOP:GAP,GAP…`` (what the stream sends as ``id``); HubError 400 otherwise."""
        top, _, gaps = text.strip().partition(":")
        try:
            cursor = cls(int(top))
            now = time.monotonic()
            cursor.gaps = {int(g): now for g in gaps.split(",") if g}
        except ValueError:
            raise HubError(f"Last-Event-ID {text[:100]!r}: give the id of the last event received (a number, or the "
                           "TOP:GAP,… the stream sent)") from None
        if cursor.top < 0 or any(not 0 < g < cursor.top for g in cursor.gaps) or len(cursor.gaps) > MAX_GAPS:
            raise HubError(f"Last-Event-ID {text[:100]!r}: not an id this hub sent")
        return cursor

    def advance(self, i: int, now: float) -> None:
        """Event ``i`` was read: a gap that showed up, or an id above ``top`` (ids below it not seen: gaps)."""
        if i in self.gaps:
            del self.gaps[i]
        elif i > self.top:
            for missing in range(max(self.top + 1, i - MAX_GAPS), i):
                self.gaps[missing] = now
            self.top = i
            if len(self.gaps) > MAX_GAPS:
                for g in sorted(self.gaps)[:len(self.gaps) - MAX_GAPS]:
                    del self.gaps[g]

    def expire(self, now: float) -> None:
        for g in [g for g, since in self.gaps.items() if now - since > GAP_GRACE]:
            del self.gaps[g]


@dataclass(frozen=True)
class Filter:
    """What a stream wants: a task's tree (the task, its subtasks, its build), a build (and its tasks), a tag
    (and its repository), event kinds (``build.complete``, ``repo.*``). None: everything."""

    task_id: int | None = None
    build_id: int | None = None
    tag_id: int | None = None
    kinds: tuple[str, ...] = ()

    def expression(self) -> ColumnElement[bool]:
        e = EVENTS.c
        conds: list[ColumnElement[bool]] = []
        if self.task_id is not None:
            tree = select(TASKS.c.id).where(or_(TASKS.c.id == self.task_id, TASKS.c.parent_id == self.task_id))
            its_build = select(TASKS.c.build_id).where(TASKS.c.id == self.task_id).scalar_subquery()
            conds.append(or_(and_(e.object_type == "task", e.object_id.in_(tree)),
                             and_(e.object_type == "build", e.object_id == its_build)))
        if self.build_id is not None:
            tasks = select(TASKS.c.id).where(TASKS.c.build_id == self.build_id)
            conds.append(or_(and_(e.object_type == "build", e.object_id == self.build_id),
                             and_(e.object_type == "task", e.object_id.in_(tasks))))
        if self.tag_id is not None:
            repos = select(REPOS.c.id).where(REPOS.c.tag_id == self.tag_id)
            conds.append(or_(and_(e.object_type == "tag", e.object_id == self.tag_id),
                             and_(e.object_type == "repo", e.object_id.in_(repos))))
        if self.kinds:
            conds.append(or_(*(e.kind.like(k[:-1] + "%") if k.endswith(".*") else e.kind == k
                               for k in self.kinds if k != "*"), *([true()] if "*" in self.kinds else [])))
        return and_(true(), *conds)


def start(db: Database) -> Cursor:
    """A cursor at the newest event; the ids missing among the last START_WINDOW are gaps."""
    with db.session() as s:
        top = s.scalar(select(func.max(EVENTS.c.id))) or 0
        visible = set(s.scalars(select(EVENTS.c.id).where(EVENTS.c.id > top - START_WINDOW)))
    now = time.monotonic()
    return Cursor(top, {i: now for i in range(max(1, top - START_WINDOW + 1), top) if i not in visible})


def read(db: Database, cursor: Cursor, flt: Filter) -> tuple[list[tuple[dict[str, Any], str]], bool]:
    """The events after the cursor (and gaps that showed up) the filter wants, each with the cursor's token
    after it; advances the cursor. Returns them and whether more may be waiting (a full batch)."""
    where = EVENTS.c.id > cursor.top
    if cursor.gaps:
        where = or_(where, EVENTS.c.id.in_(sorted(cursor.gaps)))
    wanted = case((flt.expression(), literal(1)), else_=literal(0)).label("wanted")
    with db.session() as s:
        rows = list(s.execute(select(EVENTS, wanted).where(where).order_by(EVENTS.c.id).limit(BATCH)))
    now = time.monotonic()
    out = []
    for r in rows:
        cursor.advance(r.id, now)
        if r.wanted:
            out.append((event_json(r), cursor.token()))
    cursor.expire(now)
    return out, len(rows) == BATCH


def frame(token: str, event: dict[str, Any] | None = None) -> bytes:
    """One SSE message: the cursor's token as its id and the event as JSON (without an event: only the id,
    so that a reconnect resumes from there)."""
    text = f"id: {token}\n"
    if event is not None:
        text += f"data: {json.dumps(event, separators=(',', ':'))}\n"
    return (text + "\n").encode()


async def stream(db: Database, signal: Signal, cursor: Cursor, flt: Filter, heartbeat: float,
                 stopping: Callable[[], bool]) -> AsyncIterator[bytes]:
    """The stream's bytes: the opening (reconnect delay and the cursor), events, heartbeats (``: keepalive``,
    with the cursor's id when events the filter did not want moved it)."""
    sent = cursor.token()
    yield b"retry: 2000\n: deb-orchestrator event stream\n" + frame(sent)
    beat = time.monotonic()
    last_read = 0.0
    while not stopping():
        await anyio.sleep(max(0.0, last_read + MIN_INTERVAL - time.monotonic()))
        seen = signal.generation
        last_read = time.monotonic()
        events, more = await anyio.to_thread.run_sync(read, db, cursor, flt)
        for event, token in events:
            yield frame(token, event)
            sent, beat = token, time.monotonic()
        if more:
            continue
        now = time.monotonic()
        if now - beat >= heartbeat:
            token = cursor.token()
            yield b": keepalive\n\n" if token == sent else b": keepalive\n" + frame(token)
            sent, beat = token, now
        await signal.wait(seen, max(0.05, min(heartbeat - (now - beat), 1.0 if cursor.gaps else IDLE_POLL)))
