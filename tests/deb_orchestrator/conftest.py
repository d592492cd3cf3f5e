"""Hub fixtures: a real hub (uvicorn in a thread, real HTTP) on SQLite and, when DEB_TEST_POSTGRES_URL is set,
on a fresh PostgreSQL database per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from orch_hub import DATABASES, HubFactory, RunningHub, database_url, start_hub

from deb_orchestrator.hub.config import HubSettings
from debarchive.signing import SigningKey


@pytest.fixture(scope="session")
def signing_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One signing key for the whole session (key generation is slow); each hub gets a copy."""
    home = tmp_path_factory.mktemp("gnupg-template") / "gnupg"
    SigningKey.ensure(home)
    return home


@pytest.fixture(params=DATABASES)
def db_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_hub(tmp_path: Path, db_kind: str, signing_home: Path) -> Iterator[HubFactory]:
    """Start hubs (same data dir and database each time, so a restart keeps everything)."""
    running: list[RunningHub] = []
    with database_url(db_kind, tmp_path / "data") as url:

        def factory(port: int | None = None, **overrides: object) -> RunningHub:
            settings = HubSettings(data=tmp_path / "data", db_url=url, lease_seconds=20.0, heartbeat_seconds=0.5,
                                   reap_interval=0.2)
            for k, v in overrides.items():
                setattr(settings, k, v)
            h = start_hub(settings, signing_home, port)
            running.append(h)
            return h

        yield factory
        for h in running:
            h.stop()


@pytest.fixture
def hub(make_hub: HubFactory) -> RunningHub:
    return make_hub()
