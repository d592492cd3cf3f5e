"""Wake-ups from the hub's event stream (``GET /api/v1/events/stream``), for clients that wait.

A waiting client (``watch-task``, ``build --wait``, ``wait-repo``, compose's build phase) reads the state it
waits for with ordinary GETs and, between two reads, waits on an :class:`EventFeed`: it returns as soon as
the hub streams an event the filters want. The feed is opened *before* the first read, so nothing that
happens after that read is missed; a dropped connection is resumed with ``Last-Event-ID``.

When streaming does not work the feed falls back to polling (:attr:`EventFeed.streaming` turns False, and
:meth:`EventFeed.wait` just sleeps its ``poll`` interval): a hub without the stream (older, or ``hub
--no-event-stream``) or an error answer; a proxy that buffers the response (the stream's opening does not
arrive within ``open_timeout`` seconds); a stream that goes silent for longer than two heartbeats and cannot
be reopened.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx

log = logging.getLogger("deb_orchestrator.client")
API_STREAM = "/api/v1/events/stream"
OPEN_TIMEOUT = 5.0  # seconds for the stream's opening to arrive; later: a proxy buffers, poll instead


class EventFeed:
    """A background reader of the event stream and a "something happened" counter (``generation``)."""

    def __init__(self, url: str, token: str | None, params: dict[str, Any], *, poll: float = 1.0,
                 heartbeat: float = 15.0, open_timeout: float | None = None) -> None:
        self.params = {k: v for k, v in {**params, "heartbeat": heartbeat}.items() if v is not None}
        self.poll, self.heartbeat = poll, heartbeat
        self.open_timeout = OPEN_TIMEOUT if open_timeout is None else open_timeout
        headers = {"Accept": "text/event-stream", **({"Authorization": f"Bearer {token}"} if token else {})}
        self.http = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=httpx.Timeout(
            10.0, read=2 * heartbeat + 5.0))
        self.streaming = True
        self.fallback_reason = ""
        self.generation = 0  # events received (and reconnects: something may have been missed before)
        self.last_id: str | None = None
        self._log: list[tuple[int, dict[str, Any]]] = []  # (generation, event), the last 100 received
        self._cond = threading.Condition()
        self._opened = threading.Event()
        self._stop = threading.Event()
        self._response: httpx.Response | None = None
        self._thread = threading.Thread(target=self._run, name="event-feed", daemon=True)

    def __enter__(self) -> EventFeed:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        """Start reading; returns once the stream is open (or the feed fell back to polling)."""
        self._thread.start()
        if not self._opened.wait(self.open_timeout):
            self._give_up(f"the stream's opening did not arrive within {self.open_timeout:g} s (a proxy that buffers "
                          "responses?)")

    def close(self) -> None:
        self._stop.set()
        self._interrupt()
        self._thread.join(timeout=5)
        self.http.close()

    def _interrupt(self) -> None:
        """End the reader's blocking read: shut the stream's socket down (closing the response from another
        thread does not wake a thread blocked in recv)."""
        response = self._response
        if response is None:
            return
        stream = response.extensions.get("network_stream")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    @property
    def events(self) -> list[dict[str, Any]]:
        """The last events received (at most 100), oldest first."""
        with self._cond:
            return [e for _, e in self._log]

    def since(self, seen: int) -> list[dict[str, Any]]:
        """The events received after :attr:`generation` was ``seen`` (of the last 100)."""
        with self._cond:
            return [e for g, e in self._log if g > seen]

    def wait(self, seen: int, timeout: float) -> None:
        """Return when an event came after ``seen`` (a :attr:`generation` read before looking at the state),
        else after ``timeout`` seconds; without a stream after at most ``poll`` seconds."""
        if not self.streaming:
            time.sleep(max(0.0, min(timeout, self.poll)))
            return
        with self._cond:
            self._cond.wait_for(lambda: self.generation != seen or not self.streaming, max(0.0, timeout))

    # ------------------------------------------------------------------ the reader thread
    def _give_up(self, reason: str) -> None:
        if self.streaming:
            log.info("event stream unusable (%s); polling every %g s instead", reason, self.poll)
        with self._cond:
            self.streaming = False
            self.fallback_reason = reason
            self._cond.notify_all()
        self._opened.set()
        self._stop.set()
        if threading.current_thread() is not self._thread:
            self._interrupt()

    def _bump(self, event: dict[str, Any] | None = None) -> None:
        with self._cond:
            self.generation += 1
            if event is not None:
                self._log = [*self._log[-99:], (self.generation, event)]
            self._cond.notify_all()

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            got_any = False
            try:
                headers = {"Last-Event-ID": self.last_id} if self.last_id else {}
                with self.http.stream("GET", API_STREAM, params=self.params, headers=headers) as resp:
                    if resp.status_code != 200 or not resp.headers.get("content-type", "").startswith(
                            "text/event-stream"):
                        self._give_up(f"GET {API_STREAM} answered {resp.status_code} "
                                      f"{resp.headers.get('content-type', '')}".strip())
                        return
                    self._response = resp
                    for kind, value in _messages(resp.iter_lines()):
                        got_any = True
                        failures = 0
                        if kind == "open":
                            if self._opened.is_set():  # a reconnect: events may have been missed meanwhile
                                self._bump()
                            self._opened.set()
                        elif kind == "id":
                            self.last_id = value
                        elif kind == "event":
                            self._bump(value)
            except (httpx.HTTPError, ValueError) as exc:
                if self._stop.is_set():
                    return
                log.debug("event stream broke: %s", exc)
                if not got_any and not self._opened.is_set():
                    self._give_up(f"{type(exc).__name__}: {exc}")
                    return
            if self._stop.is_set():
                return
            failures += 1
            if failures > 3:
                self._give_up("the stream broke several times in a row")
                return
            self._stop.wait(min(2.0 * failures, 5.0))


def _messages(lines: Iterator[str]) -> Iterator[tuple[str, Any]]:
    """SSE lines → ("open", None) for the opening comment, ("beat", None) for other comments, and for each
    message ("id", token) if it has one, then ("event", dict) if it has data."""
    data: list[str] = []
    token: str | None = None
    for line in lines:
        if line.startswith(":"):
            yield ("open", None) if "event stream" in line else ("beat", None)
        elif line.startswith("id:"):
            token = line[3:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
        elif not line:
            if token is not None:
                yield "id", token
            if data:
                yield "event", json.loads("\n".join(data))
            data, token = [], None
