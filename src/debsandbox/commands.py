"""Run a command, stream its output to a log file (and an optional callback), honour cancellation.

Every long-running external tool in the project goes through :func:`run`, so that logs, timeouts,
cancellation and "no leftover processes" behave the same everywhere.
"""

from __future__ import annotations

import contextlib
import os
import select
import shlex
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from debsandbox import procs

LineCallback = Callable[[str], None]


class CommandError(RuntimeError):
    """A command exited non-zero (or could not start). Carries the tail of its output."""

    def __init__(self, argv: Sequence[str], returncode: int, tail: str, log: Path | None = None) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.tail = tail
        self.log = log
        where = f" (full log: {log})" if log else ""
        super().__init__(f"{shlex.join(self.argv)} exited with {returncode}{where}\n{tail}".rstrip())


class CommandCancelled(RuntimeError):
    """The cancellation event was set while the command ran; the process group was killed."""


class CommandTimeout(RuntimeError):
    """The command ran longer than its timeout; the process group was killed."""


@dataclass
class Completed:
    argv: list[str]
    returncode: int
    output: str
    seconds: float
    tail_lines: list[str] = field(default_factory=list)


def _members(pgid: int, known: set[int]) -> set[int]:
    """Live (not zombie) processes of the group ``pgid``, ``known`` ones and their descendants."""
    table = procs.table()
    own = os.getpgrp()
    live = {p for p, (_pp, g, state) in table.items() if g == pgid != own and state != "Z"}
    for p in list(known):
        if p in table and table[p][2] != "Z":
            live.add(p)
    for p in list(live):
        live |= {d for d in procs.descendants(p, table) if table[d][2] != "Z"}
    return live


def _signal_all(pgid: int, pids: set[int], sig: signal.Signals) -> None:
    if pgid != os.getpgrp():  # never our own group (the command runs in a session of its own)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)
    for p in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(p, sig)


def _kill_group(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """Terminate the process group of ``proc`` and every descendant of it (also one that left the group,
    such as a process in a new session), then kill what lingers, and wait until none of them runs."""
    try:
        pgid = os.getpgid(proc.pid)
    except ProcessLookupError:
        return
    # the descendants are known by their parent links only while the parents live: note them first
    known = _members(pgid, {proc.pid})
    _signal_all(pgid, known, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace)
    known |= _members(pgid, known)
    deadline = time.monotonic() + 30.0
    while True:
        live = _members(pgid, known) - {os.getpid()}
        if proc.poll() is None:
            live.add(proc.pid)
        if not live:
            return
        _signal_all(pgid, live, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=0.1)
        if time.monotonic() > deadline:
            return
        time.sleep(0.05)


def _open_log(log: Path | IO[str] | None) -> tuple[IO[str] | None, bool]:
    """The log to write to, and whether :func:`run` opened it (and must close it)."""
    if isinstance(log, Path):
        log.parent.mkdir(parents=True, exist_ok=True)
        return open(log, "a", encoding="utf-8", errors="replace"), True  # run() closes it
    return log, False


@dataclass
class _Output:
    """What :func:`run` keeps of the output: the last lines always, all of it when capturing."""

    tail: int
    capture: bool
    logfile: IO[str] | None
    on_line: LineCallback | None
    last: deque[str] = field(init=False)
    captured: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.last = deque(maxlen=self.tail)

    def pump(self, stream: IO[bytes]) -> None:
        """Read ``stream`` to its end, a line at a time (in a thread of its own)."""
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", errors="replace")
            self.last.append(line.rstrip("\n"))
            if self.capture:
                self.captured.append(line)
            if self.logfile is not None:
                self.logfile.write(line)
                self.logfile.flush()
            if self.on_line is not None:
                self.on_line(line.rstrip("\n"))


def _feed(proc: subprocess.Popen[bytes], stdin: bytes | None) -> None:
    if stdin is None:
        return
    assert proc.stdin is not None
    try:
        proc.stdin.write(stdin)
        proc.stdin.close()
    except BrokenPipeError:
        pass


def _wait(proc: subprocess.Popen[bytes], deadline: float | None, cancel: threading.Event | None) -> str | None:
    """Wait for ``proc``; kill its group and say why ("cancelled", "timeout") when it has to stop early.

    The end is seen at once through a pidfd (``Popen.wait(timeout)`` polls, up to 50 ms late: a build runs a
    dozen commands); cancellation and the deadline are checked every 0.2 s."""
    try:
        pidfd: int | None = os.pidfd_open(proc.pid)
    except OSError:  # already reaped, or a kernel without pidfds
        pidfd = None
    try:
        while True:
            if pidfd is not None:
                select.select([pidfd], [], [], 0.2)
                if proc.poll() is not None:
                    return None
            else:
                try:
                    proc.wait(timeout=0.2)
                    return None
                except subprocess.TimeoutExpired:
                    pass
            if cancel is not None and cancel.is_set():
                _kill_group(proc)
                return "cancelled"
            if deadline is not None and time.monotonic() > deadline:
                _kill_group(proc)
                return "timeout"
    finally:
        if pidfd is not None:
            os.close(pidfd)


def run(
    argv: Sequence[str | os.PathLike[str]],
    *,
    log: Path | IO[str] | None = None,
    on_line: LineCallback | None = None,
    env: Mapping[str, str] | None = None,
    extra_env: Mapping[str, str] | None = None,
    cwd: Path | str | None = None,
    stdin: bytes | None = None,
    check: bool = True,
    capture: bool = False,
    timeout: float | None = None,
    cancel: threading.Event | None = None,
    tail: int = 40,
) -> Completed:
    """Run ``argv``; stdout and stderr are merged, line by line, into ``log`` and ``on_line``.

    ``capture`` keeps the whole output in the result (use it for small outputs only). The command
    runs in its own process group so that a timeout, a cancellation or an exception here kills it
    and all of its children.
    """
    args = [os.fspath(a) for a in argv]
    full_env = dict(os.environ if env is None else env)
    if extra_env:
        full_env.update(extra_env)
    logfile, own_log = _open_log(log)
    log_path = log if isinstance(log, Path) else None
    start = time.monotonic()
    if logfile is not None:
        logfile.write(f"+ {shlex.join(args)}\n")
        logfile.flush()
    try:
        proc = subprocess.Popen(
            args,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=full_env,
            cwd=cwd,
            start_new_session=True,
        )
    except OSError as exc:
        if logfile is not None and own_log:
            logfile.close()
        raise CommandError(args, 127, str(exc), log_path) from exc

    out = _Output(tail, capture, logfile, on_line)
    assert proc.stdout is not None
    reader = threading.Thread(target=out.pump, args=(proc.stdout,), daemon=True)
    reader.start()
    try:
        _feed(proc, stdin)
        reason = _wait(proc, None if timeout is None else start + timeout, cancel)
    except BaseException:
        _kill_group(proc)
        raise
    finally:
        reader.join(timeout=10)
        if logfile is not None:
            logfile.write(f"# exit {proc.returncode} after {time.monotonic() - start:.1f}s\n")
            logfile.flush()
            if own_log:
                logfile.close()
    seconds = time.monotonic() - start
    if reason == "cancelled":
        raise CommandCancelled(f"{shlex.join(args)} was cancelled")
    if reason == "timeout":
        raise CommandTimeout(f"{shlex.join(args)} timed out after {timeout:.0f}s")
    result = Completed(args, proc.returncode, "".join(out.captured), seconds, list(out.last))
    if check and proc.returncode != 0:
        raise CommandError(args, proc.returncode, "\n".join(out.last), log_path)
    return result


def output(argv: Sequence[str | os.PathLike[str]], **kwargs: object) -> str:
    """Run a short command and return its stdout+stderr (raises :class:`CommandError` on failure)."""
    return run(argv, capture=True, **kwargs).output  # type: ignore[arg-type]
