"""The result directory's logs: build.log, root.log, and state.log with phase timings (mock's format)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path


class StateLog:
    """Writes ``Start: X`` / ``Finish: X`` lines and keeps each phase's duration for result.json."""

    def __init__(self, resultdir: Path, on_phase: Callable[[str], None] | None = None) -> None:
        self.path = resultdir / "state.log"
        self.build_log = resultdir / "build.log"
        self.root_log = resultdir / "root.log"
        self.phases: dict[str, float] = {}
        self.on_phase = on_phase
        for p in (self.path, self.build_log, self.root_log):
            p.write_text("")

    def note(self, message: str, *, root_log: bool = False) -> None:
        """A line in state.log (and in root.log too, for chroot and dependency work)."""
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n"
        with open(self.path, "a") as fh:
            fh.write(line)
        if root_log:
            with open(self.root_log, "a") as fh:
                fh.write(line)

    @contextlib.contextmanager
    def phase(self, name: str, detail: str = "") -> Iterator[None]:
        self.note(f"Start: {name}{' ' + detail if detail else ''}")
        if self.on_phase:
            self.on_phase(name if not detail else f"{name}: {detail}")
        start = time.monotonic()
        try:
            yield
        finally:
            took = time.monotonic() - start
            self.phases[name] = round(self.phases.get(name, 0.0) + took, 3)
            self.note(f"Finish: {name} ({took:.1f}s)")
