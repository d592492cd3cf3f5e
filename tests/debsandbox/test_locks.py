"""flock-based locks (exclusive, shared, timeout, kept or removed lock files) and removing a tree only
when nobody holds its lock."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from debsandbox.locks import LockBusy, flock, remove_unless_locked


def test_exclusive_lock_excludes_and_leaves_no_file(tmp_path: Path) -> None:
    lock = tmp_path / "x.lock"
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


def test_timeout_gives_up_and_on_wait_is_told_once(tmp_path: Path) -> None:
    lock = tmp_path / "t.lock"
    told: list[str] = []
    with flock(lock, keep_file=True):
        start = time.monotonic()
        with pytest.raises(LockBusy, match=r"t\.lock is held by another process"), \
                flock(lock, timeout=0.3, on_wait=lambda: told.append("waiting")):
            pass
        assert 0.3 <= time.monotonic() - start < 3
    assert told == ["waiting"]


def test_kept_lock_file_stays_and_is_reused(tmp_path: Path) -> None:
    lock = tmp_path / "k.lock"
    with flock(lock, keep_file=True), pytest.raises(LockBusy), flock(lock, keep_file=True, blocking=False):
        pass
    assert lock.exists()
    inode = lock.stat().st_ino
    with flock(lock, keep_file=True):
        pass
    assert lock.stat().st_ino == inode


def test_remove_unless_locked_spares_a_tree_in_use(tmp_path: Path) -> None:
    tree, lock = tmp_path / "tree", tmp_path / "tree.lock"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "f").write_text("x")
    with flock(lock):
        assert remove_unless_locked(tree, lock) is False
        assert (tree / "sub" / "f").read_text() == "x"
    assert remove_unless_locked(tree, lock) is True
    assert not tree.exists() and not lock.exists()
