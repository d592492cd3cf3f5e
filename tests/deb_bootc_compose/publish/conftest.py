"""The publish tests' guard: every gpg-agent publish (or ostree's GPGME) starts is stopped again."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "debarchive"))
from debarchive_helpers import assert_no_gpg_agent_left


@pytest.fixture(scope="session", autouse=True)
def no_gpg_agent_left(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    yield
    # publish's private homes are /tmp/dbc-gpg-*, removed after use; the tests' homes are under basetemp
    assert_no_gpg_agent_left(str(tmp_path_factory.getbasetemp()), "/tmp/dbc-gpg-")
