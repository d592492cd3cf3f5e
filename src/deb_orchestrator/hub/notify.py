"""Wake waiting requests when work appears: in this process (threads → event loop) and, on PostgreSQL,
in every other hub process on the same database (LISTEN/NOTIFY).

A :class:`Signal` is a generation counter with an awaitable "it changed". ``notify`` may be called from
any thread. With a :class:`PgBridge` attached, ``notify`` also sends ``NOTIFY <channel>`` (from a sender
thread, so callers never wait for the database) and a listener thread turns other processes'
notifications into local ones: a long-poll waiting in one hub worker wakes when a task is queued by
another. Without the bridge (SQLite: one process) every waiter still re-checks the database each second.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import threading
import uuid
from collections.abc import Callable

log = logging.getLogger("deb_orchestrator.hub.notify")


class Signal:
    """A generation counter with an awaitable "it changed". ``notify`` may be called from any thread."""

    def __init__(self, channel: str = "") -> None:
        self.channel = channel
        self.generation = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None
        self._cond = threading.Condition()
        self.broadcast: Callable[[str], None] | None = None  # set by PgBridge.attach

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._event = asyncio.Event()

    def notify(self) -> None:
        """Wake waiters here and, with a bridge, in the other hub processes."""
        self.notify_local()
        if self.broadcast is not None:
            self.broadcast(self.channel)

    def notify_local(self) -> None:
        with self._lock:
            self.generation += 1
        with self._cond:
            self._cond.notify_all()
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._fire)
            except RuntimeError:  # loop shutting down
                pass

    def _fire(self) -> None:
        old = self._event
        self._event = asyncio.Event()
        if old is not None:
            old.set()

    async def wait(self, seen: int, timeout: float) -> None:
        """Return when the generation differs from ``seen`` or after ``timeout`` seconds."""
        if self.generation != seen or self._event is None:
            if self._event is None:
                await asyncio.sleep(min(timeout, 0.2))
            return
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            pass

    def wait_sync(self, seen: int, timeout: float) -> None:
        with self._cond:
            if self.generation == seen:
                self._cond.wait(timeout)


def psycopg_conninfo(url: str) -> str:
    """``postgresql+psycopg://u:p@h:5432/db`` (SQLAlchemy) → ``postgresql://u:p@h:5432/db`` (libpq)."""
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme.startswith("postgresql"):
        raise ValueError(f"not a PostgreSQL URL: {url!r}")
    return f"postgresql://{rest}"


class PgBridge:
    """Carries Signals between hub processes through PostgreSQL LISTEN/NOTIFY.

    Channel names are prefixed (``deb_orchestrator_<name>``); the payload is this process's id, so a
    process ignores its own notifications (it already woke its waiters). Two connections: one listens,
    one sends; both reconnect after errors.
    """

    PREFIX = "deb_orchestrator_"

    def __init__(self, url: str) -> None:
        self.conninfo = psycopg_conninfo(url)
        self.me = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.signals: dict[str, Signal] = {}
        self._outbox: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.listening = threading.Event()  # set once LISTEN is in place (tests wait for it)
        self.received = 0  # notifications from other processes

    def attach(self, name: str, signal: Signal) -> None:
        signal.channel = name
        signal.broadcast = self._outbox.put
        self.signals[name] = signal

    def start(self) -> None:
        for target, name in ((self._listen, "pg-listen"), (self._send, "pg-notify")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        self._outbox.put(None)
        for t in self._threads:
            t.join(timeout=5)
        for s in self.signals.values():
            s.broadcast = None

    def _listen(self) -> None:
        import psycopg

        while not self._stop.is_set():
            try:
                with psycopg.connect(self.conninfo, autocommit=True,
                                     application_name="deb-orchestrator hub (listen)") as conn:
                    for name in self.signals:
                        conn.execute(f"LISTEN {self.PREFIX}{name}")
                    # something may have happened while we were not listening: wake everyone once
                    for s in self.signals.values():
                        s.notify_local()
                    self.listening.set()
                    while not self._stop.is_set():
                        for n in conn.notifies(timeout=0.5):
                            if n.payload == self.me:
                                continue
                            signal = self.signals.get(n.channel.removeprefix(self.PREFIX))
                            if signal is not None:
                                self.received += 1
                                signal.notify_local()
            except psycopg.Error as exc:
                self.listening.clear()
                if not self._stop.is_set():
                    log.warning("LISTEN connection failed (%s); reconnecting", exc)
                    self._stop.wait(1.0)

    def _send(self) -> None:
        import psycopg

        conn: psycopg.Connection[object] | None = None
        while True:
            name = self._outbox.get()
            if name is None or self._stop.is_set():
                break
            pending = {name}
            while True:  # coalesce a burst into one NOTIFY per channel
                try:
                    more = self._outbox.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._stop.set()
                    break
                pending.add(more)
            for channel in pending:
                try:
                    if conn is None or conn.closed:
                        conn = psycopg.connect(self.conninfo, autocommit=True,
                                               application_name="deb-orchestrator hub (notify)")
                    conn.execute("SELECT pg_notify(%s, %s)", (self.PREFIX + channel, self.me))
                except psycopg.Error as exc:
                    log.warning("NOTIFY %s failed: %s (other hub processes re-check within a second)", channel,
                                exc)
                    conn = None
            if self._stop.is_set():
                break
        if conn is not None:
            conn.close()
