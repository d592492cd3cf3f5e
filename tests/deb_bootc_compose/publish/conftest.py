"""The publish tests' guard: every gpg-agent publish (or ostree's GPGME) starts is stopped again."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "debarchive"))
from debarchive_helpers import gpg_agents, still_there_after


@pytest.fixture(scope="session", autouse=True)
def no_gpg_agent_left(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    yield
    base = str(tmp_path_factory.getbasetemp())

    def leaked() -> list[str]:
        # publish's private homes are /tmp/dbc-gpg-*, removed after use; the tests' homes are under basetemp
        return [cmd for cmd, home in gpg_agents() if home.startswith(base) or
                (home.startswith("/tmp/dbc-gpg-") and not Path(home).exists())]

    left = still_there_after(leaked)
    assert left == [], f"gpg-agent processes left running: {left}"
