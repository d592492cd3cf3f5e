from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from deb_mock.chroot.locking import LockBusy, flock


def test_exclusive_lock_excludes_and_leaves_no_file(tmp_path: Path) -> None:
    lock = tmp_path / "locks" / "x.lock"
    with flock(lock):
        assert lock.exists()
        with pytest.raises(LockBusy), flock(lock, blocking=False):
            pass
    assert not lock.exists()


def test_shared_locks_coexist_and_block_exclusive(tmp_path: Path) -> None:
    lock = tmp_path / "s.lock"
    with flock(lock, shared=True), flock(lock, shared=True), pytest.raises(LockBusy), flock(lock, blocking=False):
        pass
    assert not lock.exists()


def test_waiter_gets_the_lock_after_the_holder_removed_the_file(tmp_path: Path) -> None:
    lock = tmp_path / "w.lock"
    order: list[str] = []
    held = threading.Event()

    def holder() -> None:
        with flock(lock):
            held.set()
            time.sleep(0.3)
            order.append("holder done")

    t = threading.Thread(target=holder)
    t.start()
    held.wait()
    with flock(lock, timeout=5):
        order.append("waiter in")
    t.join()
    assert order == ["holder done", "waiter in"]
    assert not lock.exists()
