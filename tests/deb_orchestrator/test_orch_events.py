"""``GET /api/v1/events/stream`` on a real hub (SQLite and PostgreSQL): filters, heartbeats, resuming with
Last-Event-ID, an event that commits after a later-numbered one (two real transactions), many open streams
without request threads, and the clients that wait on it (wait_task, wait_repo, watch-task) with their fallback to
polling behind a proxy that buffers responses or on a hub without the stream."""

from __future__ import annotations

import json
import queue
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from orch_hub import CLI, RunningHub
from orch_proxy import buffering_proxy

from deb_orchestrator.client import HubClient
from deb_orchestrator.hub import events
from deb_orchestrator.hub.db import Database
from deb_orchestrator.hub.eventstream import Cursor

STREAM = "/api/v1/events/stream"


class SSE:
    """A raw SSE client in a thread: messages (id, event or None) and comments, in order."""

    def __init__(self, url: str, params: dict[str, Any] | None = None, last_id: str | None = None) -> None:
        self.items: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.last_id: str | None = None
        self.client = httpx.Client(timeout=httpx.Timeout(30.0))
        headers = {"Last-Event-ID": last_id} if last_id else {}
        self.cm = self.client.stream("GET", url + STREAM, params=params or {}, headers=headers)
        self.resp = self.cm.__enter__()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        kind, _ = self.items.get(timeout=10)  # the opening comment: the stream's start is fixed now
        assert kind == "comment"

    def _read(self) -> None:
        data: list[str] = []
        token = None
        try:
            for line in self.resp.iter_lines():
                if line.startswith(":"):
                    self.items.put(("comment", line))
                elif line.startswith("id:"):
                    token = line[3:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].strip())
                elif not line:
                    if token is not None:
                        self.last_id = token
                    if data:
                        self.items.put(("event", json.loads("".join(data))))
                    data, token = [], None
        except httpx.HTTPError:
            pass

    def events(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while len(out) < count:
            kind, value = self.items.get(timeout=max(0.01, deadline - time.monotonic()))
            if kind == "event":
                out.append(value)
        return out

    def quiet(self, seconds: float) -> list[dict[str, Any]]:
        """The events that arrive within ``seconds`` (none expected, usually)."""
        time.sleep(seconds)
        return [v for k, v in list(self.items.queue) if k == "event"]

    def close(self) -> None:
        """Shut the socket down (closing the response does not wake the reader blocked in recv), so that the hub
        sees the client go at once."""
        sock = self.resp.extensions["network_stream"].get_extra_info("socket")
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.thread.join(5)
        self.resp.close()
        self.client.close()


@contextmanager
def sse(url: str, params: dict[str, Any] | None = None, last_id: str | None = None) -> Iterator[SSE]:
    s = SSE(url, params, last_id)
    try:
        yield s
    finally:
        s.close()


def test_filters_heartbeats_and_resuming(hub: RunningHub) -> None:
    admin = hub.admin
    admin.add_tag("base")
    admin.add_tag("dest", parents=["base"])
    admin.add_tag("other")
    dest = admin.tag("dest").id
    unknown = httpx.get(hub.url + STREAM, params={"tag": "nosuch"})
    assert unknown.status_code == 404 and "nosuch" in unknown.json()["detail"]
    with sse(hub.url, {"tag": "dest", "kind": "repo.regen-requested", "heartbeat": 0.3}) as s:
        admin.regen_repo("other")  # not dest's
        admin.regen_repo("dest")
        [ev] = s.events(1)
        assert (ev["kind"], ev["object_type"], ev["object_id"]) == ("repo.regen-requested", "tag", dest)
        time.sleep(0.7)
        items = list(s.items.queue)
        assert [v for k, v in items if k == "event"] == []  # nothing else for dest
        assert sum(k == "comment" and "keepalive" in v for k, v in items) >= 1  # heartbeats, as SSE comments
        resume = s.last_id
    assert resume is not None
    admin.regen_repo("dest")  # while no stream is open
    admin.regen_repo("other")
    admin.regen_repo("dest")
    with sse(hub.url, {"tag": "dest", "kind": "repo.regen-requested"}, last_id=resume) as s:
        missed = s.events(2)
        assert s.quiet(0.5) == []  # exactly those two, once
    expected = [e.id for e in admin.events(limit=1000) if e.kind == "repo.regen-requested" and e.object_id == dest]
    assert [e["id"] for e in missed] == expected[-2:] and ev["id"] == expected[0]
    bad = httpx.get(hub.url + STREAM, headers={"Last-Event-ID": "yesterday"})
    assert bad.status_code == 400 and "Last-Event-ID" in bad.json()["detail"]
    bad = httpx.get(hub.url + STREAM, params={"kind": "build.exploded"})
    assert bad.status_code == 400 and "build.exploded" in bad.json()["detail"]


def record_in_thread(db: Database, kind: str, object_id: int, inserted: threading.Event,
                     release: threading.Event, ids: list[int]) -> threading.Thread:
    """A transaction that records an event, then waits for ``release`` before it commits."""

    def run() -> None:
        with db.session() as s:
            ids.append(events.record(s, kind, "tag", object_id, "test"))
            inserted.set()
            assert release.wait(30)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_an_event_committed_after_a_later_numbered_one_is_not_lost(hub: RunningHub) -> None:
    """PostgreSQL allocates event ids at INSERT, so a transaction that commits later can hold a lower id: the
    stream (and a stream resumed with Last-Event-ID) still delivers it. SQLite serializes writers
    (BEGIN IMMEDIATE): there the second transaction waits for the first, and ids commit in order."""
    db = hub.hub.db
    with sse(hub.url, {"kind": "tag.edited"}) as live, sse(hub.url, {"kind": "tag.edited"}) as resumed:
        inserted, release = threading.Event(), threading.Event()
        a_ids: list[int] = []
        b_ids: list[int] = []
        a = record_in_thread(db, "tag.edited", 1, inserted, release, a_ids)
        assert inserted.wait(10)
        b_done = threading.Event()

        def commit_b() -> None:
            with db.session() as s:
                b_ids.append(events.record(s, "tag.edited", "tag", 2, "test"))
            b_done.set()

        tb = threading.Thread(target=commit_b, daemon=True)
        tb.start()
        if db.is_sqlite:
            assert not b_done.wait(0.5)  # B waits for A's transaction
            release.set()
            a.join(10)
            tb.join(10)
            assert b_ids[0] > a_ids[0]
            assert [e["id"] for e in live.events(2)] == [a_ids[0], b_ids[0]]
            return
        assert b_done.wait(10)
        assert b_ids[0] > a_ids[0]  # B committed; A, with the lower id, has not yet
        [first] = live.events(1)
        assert first["id"] == b_ids[0]
        [seen] = resumed.events(1)
        token = resumed.last_id
        assert seen["id"] == b_ids[0] and token is not None
        assert a_ids[0] in Cursor.parse(token).gaps  # the cursor sent with B names A as a gap
        resumed.close()  # the client goes away with B; A commits meanwhile
        release.set()
        a.join(10)
        assert [e["id"] for e in live.events(1)] == [a_ids[0]]  # the open stream delivers A late
        assert [e.id for e in hub.admin.events(after=b_ids[0])] == []  # what a reader of "after B" would miss
        with sse(hub.url, {"kind": "tag.edited"}, last_id=token) as again:
            assert [e["id"] for e in again.events(1)] == [a_ids[0]]
            assert again.quiet(0.3) == []


def test_open_streams_hold_no_request_thread(hub: RunningHub) -> None:
    """More open streams than the hub has request threads (db.POOL_SIZE, 20): the API still answers at once,
    and every stream gets the event."""
    admin = hub.admin
    admin.add_tag("dest")
    streams = [SSE(hub.url, {"tag": "dest", "kind": "repo.regen-requested"}) for _ in range(30)]
    try:
        started = time.monotonic()
        assert admin.tag("dest").name == "dest"
        admin.regen_repo("dest")
        assert time.monotonic() - started < 5
        for s in streams:
            assert s.events(1)[0]["kind"] == "repo.regen-requested"
    finally:
        for s in streams:
            s.close()


def noop_task(hub: RunningHub) -> tuple[int, HubClient]:
    admin = hub.admin
    token = admin.add_host("b1", ["amd64"])["token"]
    [task_id] = admin.noop(1)
    return task_id, hub.client(token)


def finish_later(builder: HubClient, delay: float) -> threading.Thread:
    def run() -> None:
        time.sleep(delay)
        p = builder.claim(["amd64"], wait=10)
        assert p is not None
        builder.complete(p["task_id"], p["fence"], {"state": "success", "exit_code": 0})

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_wait_task_is_woken_by_the_stream(hub: RunningHub) -> None:
    task_id, builder = noop_task(hub)
    admin = hub.admin
    t = finish_later(builder, 1.0)
    started = time.monotonic()
    task = admin.wait_task(task_id, timeout=60, poll=60)  # polling would take a minute
    assert task.state == "closed" and time.monotonic() - started < 10
    assert admin.feed is not None and admin.feed.streaming and admin.feed.events
    t.join(10)


def test_clients_fall_back_to_polling_behind_a_buffering_proxy(hub: RunningHub) -> None:
    task_id, builder = noop_task(hub)
    hub.admin.add_tag("dest")
    with buffering_proxy(hub.url) as proxy:
        client = HubClient(proxy, hub.admin_token)  # the proxy's URL (wait_repo below: through it too)
        client.feed_options = {"open_timeout": 1.0}
        try:
            t = finish_later(builder, 1.5)
            task = client.wait_task(task_id, timeout=60, poll=0.3)
            assert task.state == "closed"
            assert client.feed is not None and not client.feed.streaming
            assert "opening did not arrive" in client.feed.fallback_reason
            t.join(10)
            info = client.wait_repo("dest", timeout=60)  # the hub's long-poll, through the proxy
            assert info.done and not client.feed.streaming
        finally:
            client.close()
        # the command line: watch-task streams (a task finishing later); through the proxy it polls
        env = {"DEB_ORCHESTRATOR_TOKEN": hub.admin_token, "PATH": "/usr/bin:/bin"}
        for url in (hub.url, proxy):
            task_id = hub.admin.noop(1)[0]
            t = finish_later(builder, 1.0)
            res = subprocess.run([*CLI, "watch-task", str(task_id), "--hub", url, "--json"], env=env,
                                 capture_output=True, text=True, timeout=60)
            assert res.returncode == 0, res.stderr
            assert json.loads(res.stdout)["task"]["state"] == "closed"
            t.join(10)


def test_a_hub_without_the_stream_is_polled(make_hub: Any) -> None:
    h = make_hub(event_stream=False, publish_repos=False)
    task_id, builder = noop_task(h)
    t = finish_later(builder, 0.5)
    assert httpx.get(h.url + STREAM).status_code == 404
    client = h.admin
    assert client.wait_task(task_id, timeout=30, poll=0.2).state == "closed"
    assert client.feed is not None and not client.feed.streaming and "404" in client.feed.fallback_reason
    t.join(10)
