"""What the user sees while deb-mock works: a live one-line phase indicator on a terminal, plain lines
otherwise, and the streamed build log with ``-v``."""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console
    from rich.status import Status


class Progress:
    """With ``-q`` (verbosity -1) nothing is shown but errors, and rich is never imported (its import is
    about 25 ms of a warm build's start)."""

    def __init__(self, verbosity: int) -> None:
        self.verbosity = verbosity
        self._console: Console | None = None
        self.live = verbosity >= 0 and self.console.is_terminal
        self._status: Status | None = None
        self._start = time.monotonic()
        self.label = ""

    @property
    def console(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=True, highlight=False)
        return self._console

    def __enter__(self) -> Progress:
        if self.live:
            self._status = self.console.status("starting")
            self._status.__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._status is not None:
            self._status.__exit__(exc_type, exc, tb)
            self._status = None

    def phase(self, name: str) -> None:
        elapsed = time.monotonic() - self._start
        text = f"{self.label}{name}"
        if self._status is not None:
            self._status.update(f"[bold]{text}[/bold]  [dim]{elapsed:.0f}s[/dim]")
        elif self.verbosity >= 0:
            print(f"deb-mock: [{elapsed:5.0f}s] {text}", file=sys.stderr, flush=True)

    def log_line(self, line: str) -> None:
        if self.verbosity > 0:
            if self._status is not None:
                self.console.print(line, markup=False, highlight=False)
            else:
                print(line, flush=True)

    def info(self, message: str) -> None:
        if self.verbosity >= 0:
            self.console.print(message, markup=False, highlight=False)
