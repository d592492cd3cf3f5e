"""One compose at a time in a target directory: the second waits, says so once, and runs after the first."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from deb_bootc_compose.compose import target_lock
from deb_bootc_compose.paths import TargetPaths


def test_second_compose_waits_for_the_first_and_says_so(tmp_path: Path) -> None:
    target = TargetPaths(tmp_path / "target")
    order: list[str] = []
    said: list[str] = []
    held = threading.Event()

    def first() -> None:
        with target_lock(target, order.append):
            held.set()
            time.sleep(0.5)
            order.append("first done")

    t = threading.Thread(target=first)
    t.start()
    held.wait()
    with target_lock(target, said.append):
        order.append("second in")
    t.join()
    assert order == ["first done", "second in"]
    assert said == [f"another compose is running in {target.target}; waiting for it to finish"]
    assert target.lock.exists()  # the lock file stays in the target's state directory


def test_no_message_when_the_target_is_free(tmp_path: Path) -> None:
    target = TargetPaths(tmp_path / "target")
    said: list[str] = []
    with target_lock(target, said.append):
        pass
    with target_lock(target, said.append):
        pass
    assert said == []
