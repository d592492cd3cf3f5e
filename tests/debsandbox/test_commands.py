"""commands.run: a cancelled, timed-out or interrupted command leaves no process behind, not even one that
left the command's process group (a new session, as daemons and some tools' helpers do)."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from debsandbox.commands import CommandCancelled, CommandTimeout, run
from debsandbox.procs import alive


def spawn_escapers(tmp_path: Path) -> str:
    """A shell that starts a child in a session of its own and a grandchild that ignores SIGTERM."""
    return (f"setsid sleep 300 & echo $! > {tmp_path}/session.pid; "
            f"sh -c 'trap \"\" TERM; sleep 300 & echo $! > {tmp_path}/stubborn.pid; wait' & "
            "sleep 300")


def pids(tmp_path: Path) -> list[int]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        files = [tmp_path / "session.pid", tmp_path / "stubborn.pid"]
        if all(f.exists() and f.read_text().strip() for f in files):
            return [int(f.read_text()) for f in files]
        time.sleep(0.05)
    raise AssertionError("the command did not start its children")


def test_cancel_kills_descendants_that_left_the_group(tmp_path: Path) -> None:
    ev = threading.Event()
    threading.Timer(1.0, ev.set).start()
    start = time.monotonic()
    with pytest.raises(CommandCancelled):
        run(["sh", "-c", spawn_escapers(tmp_path)], cancel=ev)
    children = pids(tmp_path)
    # when run() returns every one of them is gone (the stubborn one after the SIGKILL that follows 5 s later)
    assert [p for p in children if alive(p)] == []
    assert time.monotonic() - start < 15


def test_timeout_and_interrupt_kill_descendants(tmp_path: Path) -> None:
    with pytest.raises(CommandTimeout):
        run(["sh", "-c", spawn_escapers(tmp_path)], timeout=1)
    assert [p for p in pids(tmp_path) if alive(p)] == []
    for f in tmp_path.glob("*.pid"):
        f.unlink()
    # an exception in the caller's thread (a signal handler's KeyboardInterrupt) while the command runs

    def interrupt() -> None:
        import _thread
        _thread.interrupt_main()

    # interrupt_main() does nothing where SIGINT is ignored, as in some pytest-xdist workers: install Python's
    # default handler (KeyboardInterrupt) for the length of the test
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        threading.Timer(1.0, interrupt).start()
        with pytest.raises(KeyboardInterrupt):
            run(["sh", "-c", spawn_escapers(tmp_path)])
    finally:
        signal.signal(signal.SIGINT, previous)
    assert [p for p in pids(tmp_path) if alive(p)] == []
    assert os.getpgrp() == os.getpgid(0)  # the test's own group was never signalled
