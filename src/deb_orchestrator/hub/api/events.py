"""The event log: every state change, in order (``after`` for incremental reading), and the same as a live
stream of Server-Sent Events (eventstream.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from sqlalchemy import select
from starlette.types import Receive, Scope, Send

from deb_orchestrator.hub import builds, eventstream
from deb_orchestrator.hub.api.common import hub_of
from deb_orchestrator.hub.errors import HubError, NotFound
from deb_orchestrator.hub.events import event_json
from deb_orchestrator.hub.models import Event, Task
from deb_orchestrator.hub.service import Hub
from deb_orchestrator.hub.webhooks import check_patterns
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
        return [event_json(e) for e in s.scalars(q)]


def _filter(hub: Hub, task: int | None, build: str | None, tag: str | None, kind: str | None) -> eventstream.Filter:
    kinds = tuple(check_patterns(kind.split(","))) if kind else ()
    with hub.db.session() as s:
        if task is not None and s.get(Task, task) is None:
            raise NotFound(f"task {task} not found")
        return eventstream.Filter(task_id=task, build_id=builds.get_build(s, build).id if build else None,
                                  tag_id=builds.get_tag(s, tag).id if tag else None, kinds=kinds)


class EventStreamResponse(StreamingResponse):
    """A stream that ends as soon as its client goes away (Starlette's StreamingResponse notices that only at its
    next write under ASGI 2.4, up to a heartbeat later): it listens for the disconnect alongside."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with anyio.create_task_group() as group:

            async def run(func: Callable[[], Awaitable[None]]) -> None:
                await func()
                group.cancel_scope.cancel()

            group.start_soon(run, partial(self.stream_response, send))
            await run(partial(self.listen_for_disconnect, receive))


STREAM_DOC = """Server-Sent Events (`text/event-stream`), one `data:` line of JSON per event (the shape of
`GET /api/v1/events`), oldest first, from now on; with `Last-Event-ID` (header, or the `last_event_id` parameter)
from after that id, including events that committed late with a lower number. Each message's `id` is the
stream's cursor (`TOP` or `TOP:GAP,…`): send it back as it is. Filters combine: `task` (the task, its
subtasks and its build), `build` (SOURCE_VERSION or ID, with its tasks), `tag` (with its repository),
`kind` (comma-separated kinds or `FAMILY.*`). Comments (`: keepalive`) every `heartbeat` seconds."""


@router.get("/stream", summary="Live events (Server-Sent Events)", description=STREAM_DOC,
            response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}}})
async def stream(request: Request,
                 task: Annotated[int | None, Query(description="a task, its subtasks and its build")] = None,
                 build: Annotated[str | None, Query(description="SOURCE_VERSION or ID, with its tasks")] = None,
                 tag: Annotated[str | None, Query(description="a tag: its events and its repository's")] = None,
                 kind: Annotated[str | None, Query(description="comma-separated kinds, FAMILY.* or *")] = None,
                 heartbeat: Annotated[float, Query(ge=0.2, le=300, description="seconds between comments")] = 15.0,
                 last_event_id_param: Annotated[str | None, Query(
                     alias="last_event_id", description="as the header, for clients that cannot set it")] = None,
                 last_event_id: Annotated[str | None, Header(
                     description="the `id` of the last message received: resume after it")] = None,
                 ) -> StreamingResponse:
    hub = hub_of(request)
    if not hub.settings.event_stream:
        raise HubError("the event stream is turned off on this hub (hub --no-event-stream); poll "
                       "GET /api/v1/events?after=ID instead", 404)
    flt = await run_in_threadpool(_filter, hub, task, build, tag, kind)
    resume = last_event_id or last_event_id_param
    cursor = (eventstream.Cursor.parse(resume) if resume
              else await run_in_threadpool(eventstream.start, hub.db))
    body = eventstream.stream(hub.db, hub.events, cursor, flt, heartbeat, hub.stopping)
    return EventStreamResponse(body, media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
