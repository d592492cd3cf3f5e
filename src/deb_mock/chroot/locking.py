"""File locks (flock) that leave no lock file behind once nobody holds them.

A lock file is removed by an exclusive holder on release; anyone who opened the old file re-checks after
acquiring that the path still names the inode they locked, and retries if not.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path


class LockBusy(RuntimeError):
    pass


@contextlib.contextmanager
def flock(path: Path, *, shared: bool = False, blocking: bool = True, timeout: float | None = None) -> Iterator[None]:
    """Hold a lock on ``path`` for the ``with`` block. Exclusive holders remove the file on release."""
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = None if timeout is None else time.monotonic() + timeout
    op = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            while True:
                try:
                    fcntl.flock(fd, op | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if not blocking or (deadline is not None and time.monotonic() > deadline):
                        raise LockBusy(f"{path} is held by another deb-mock process") from None
                    time.sleep(0.1)
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # the file was removed and maybe recreated meanwhile: lock the current one
    try:
        yield
    finally:
        if not shared:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        else:
            # the last shared holder tidies up if it can become exclusive at once
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                with contextlib.suppress(FileNotFoundError):
                    if os.stat(path).st_ino == os.fstat(fd).st_ino:
                        os.unlink(path)
            except BlockingIOError:
                pass
        os.close(fd)
