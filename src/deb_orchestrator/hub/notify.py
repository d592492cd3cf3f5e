"""Wake long-polling requests (on the event loop) from worker threads when work appears."""

from __future__ import annotations

import asyncio
import threading


class Signal:
    """A generation counter with an awaitable "it changed". ``notify`` may be called from any thread."""

    def __init__(self) -> None:
        self.generation = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None
        self._cond = threading.Condition()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._event = asyncio.Event()

    def notify(self) -> None:
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
