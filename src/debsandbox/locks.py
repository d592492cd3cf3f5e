"""File locks (flock) with a timeout, and removing a tree once nobody holds its lock.

By default a lock file is removed by an exclusive holder on release, so a lock directory does not fill
up with files of builds long gone; anyone who opened the old file re-checks after acquiring that the
path still names the inode they locked, and retries if not. ``keep_file=True`` keeps the file (a lock
that lives next to the data it guards, e.g. in a repository or a GnuPG home).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from debsandbox import idmap
from debsandbox.sandbox import remove_tree


class LockBusy(RuntimeError):
    """Another process holds the lock (and the caller asked not to wait, or waited ``timeout`` seconds)."""


@contextlib.contextmanager
def flock(
    path: Path,
    *,
    shared: bool = False,
    blocking: bool = True,
    timeout: float | None = None,
    keep_file: bool = False,
    on_wait: Callable[[], None] | None = None,
) -> Iterator[None]:
    """Hold a lock on ``path`` for the ``with`` block.

    ``blocking=False`` raises :class:`LockBusy` at once when another process holds it; ``timeout`` after
    that many seconds. ``on_wait`` is called once when the lock is busy and the caller is about to wait.
    The directory of ``path`` must exist. Exclusive holders remove the file on release unless ``keep_file``.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    op = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
    waited = False
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            while True:
                try:
                    fcntl.flock(fd, op | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if not blocking or (deadline is not None and time.monotonic() > deadline):
                        raise LockBusy(f"{path} is held by another process") from None
                    if on_wait is not None and not waited:
                        on_wait()
                    waited = True
                    time.sleep(0.1)
            if keep_file:
                break
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
        if keep_file:
            pass
        elif not shared:
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


def remove_unless_locked(tree: Path, lock: Path, ids: idmap.IdMap | None = None) -> bool:
    """Remove ``tree`` (see :func:`debsandbox.sandbox.remove_tree`) if nobody holds ``lock``, holding it
    meanwhile; returns whether it was removed (False: in use)."""
    try:
        with flock(lock, blocking=False):
            remove_tree(tree, ids)
    except LockBusy:
        return False
    return True
