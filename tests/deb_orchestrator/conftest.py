"""Hub fixtures: a real hub (uvicorn in a thread, real HTTP) on SQLite and, when DEB_TEST_POSTGRES_URL is set,
on PostgreSQL. ``hub`` is the module's hub (one per module and database), reset before each test to what a fresh
hub has (orch_reset.py); ``make_hub`` starts private hubs on a fresh database, for the tests that stop or restart
a hub, or need settings of their own."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import pytest
from orch_hub import DATABASES, HubFactory, RunningHub, database_url, start_hub
from orch_reset import reset_hub, settings_changes

from deb_orchestrator.hub.config import HubSettings
from debarchive.signing import SigningKey


@pytest.fixture(scope="session")
def signing_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One signing key for the whole session (key generation is slow); each hub gets a copy."""
    home = tmp_path_factory.mktemp("gnupg-template") / "gnupg"
    SigningKey.ensure(home)
    return home


@pytest.fixture(scope="module", params=DATABASES)
def db_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def hub_settings(data: Path, url: str, overrides: dict[str, object]) -> HubSettings:
    """The tests' hub settings: short heartbeats and reaper interval, a 20 s lease; ``overrides`` win."""
    settings = HubSettings(data=data, db_url=url, lease_seconds=20.0, heartbeat_seconds=0.5, reap_interval=0.2)
    for k, v in overrides.items():
        if not hasattr(settings, k):
            raise AttributeError(f"HubSettings has no setting {k!r}")
        setattr(settings, k, v)
    return settings


@pytest.fixture
def make_hub(tmp_path: Path, db_kind: str, signing_home: Path) -> Iterator[HubFactory]:
    """Start private hubs (same data dir and database each time, so a restart keeps everything)."""
    running: list[RunningHub] = []
    with database_url(db_kind, tmp_path / "data") as url:

        def factory(port: int | None = None, **overrides: object) -> RunningHub:
            h = start_hub(hub_settings(tmp_path / "data", url, overrides), signing_home, port)
            running.append(h)
            return h

        yield factory
        for h in running:
            h.stop()


@pytest.fixture(scope="module")
def module_hub(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, db_kind: str,
               signing_home: Path) -> Iterator[RunningHub]:
    """The module's hub on ``db_kind``; a module's ``HUB_SETTINGS`` dict overrides the test defaults."""
    data = tmp_path_factory.mktemp(f"hub-{db_kind}") / "data"
    overrides = dict(getattr(request.module, "HUB_SETTINGS", {}))
    with database_url(db_kind, data) as url:
        h = start_hub(hub_settings(data, url, overrides), signing_home)
        try:
            yield h
        finally:
            h.stop()


@pytest.fixture
def hub(module_hub: RunningHub) -> Iterator[RunningHub]:
    """The module's hub, brought back to what a fresh hub has (empty tables, ids from 1, a new first admin token,
    empty repositories and store, empty caches) before the test. A test may not change its settings."""
    reset_hub(module_hub)
    before = copy.deepcopy(module_hub.settings)
    yield module_hub
    for c in module_hub.clients:
        c.close()
    module_hub.clients.clear()
    changed = settings_changes(module_hub.settings, before)
    if changed:
        pytest.fail(f"the test changed the shared hub's settings ({', '.join(changed)}; restored): "
                    "use make_hub(SETTING=VALUE) for a hub of its own")
