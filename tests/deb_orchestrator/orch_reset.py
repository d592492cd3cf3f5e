"""One hub per module (tests/README.md): bring a running hub back to the state a fresh hub has, between tests.

A fresh hub (``orch_hub.start_hub`` on an empty database and data directory) has the schema, one user (admin)
with one token (the first admin token, also written to DATA/admin.token), its signing key in DATA/gnupg, empty
DATA/store/objects, DATA/store/tmp and DATA/repos (SQLite: DATA/hub.db and its journal files); in memory an
empty token cache, no source fetch under way, and its settings. :func:`reset_hub` restores exactly that, and
:func:`hub_state` describes it so that test_orch_shared_hub.py can compare a reset hub with a fresh one: a new
table, file or attribute the hub grows is either reset here or fails that test.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path
from typing import Any

from orch_hub import Listing, RunningHub, data_listing
from prometheus_client.metrics import MetricWrapperBase
from sqlalchemy import text

from deb_orchestrator.hub import auth, sources
from deb_orchestrator.hub.config import HubSettings
from deb_orchestrator.hub.db import Database
from deb_orchestrator.hub.metrics import HubMetrics

KEPT_TABLES = {"alembic_version"}  # the schema's revision: a fresh hub has it too
# Every attribute of a Hub, and what a reset does with it. test_orch_shared_hub fails on an attribute missing
# here: a new one must be looked at (is it state a test can see?) and listed.
HUB_ATTRIBUTES = {
    "settings": "checked unchanged after each test (the hub fixture); a test that changes them uses make_hub",
    "primary": "constant",
    "_sqlite": "constant",
    "db": "every row deleted, identities restarted (reset_tables)",
    "metrics": "its counters and histograms emptied (reset_metrics); its gauges are read from the database",
    "store": "its files removed (reset_files)",
    "key": "kept: every hub of a session has the same key (a copy of signing_home)",
    "work": "a wake-up counter: only compared with itself (waiters re-check the database)",
    "repos_changed": "a wake-up counter, as work",
    "events": "a wake-up counter, as work (event streams and the webhook sender re-read the database)",
    "webhooks": "the webhook sender: its state is in the database (deliveries, its lease row); its thread runs on",
    "timing": "derived from the settings (frozen)",
    "publisher": "the reset holds its lock: no publication or removal runs meanwhile; its repositories go",
    "fetcher": "replaced by a new one (no fetch under way, its own pool)",
    "tokens": "replaced by a new one (no cached principal; the epoch file goes with reset_files)",
    "deb_limits": "derived from the settings (frozen)",
    "plugins": "the hub plugins loaded from the settings at the start (the built-in ones keep no state)",
    "bridge": "kept: its LISTEN/NOTIFY connections carry no state of the database",
    "admin_token_path": "the first admin token is made again, as at a first start",
    "_stop": "the hub keeps running",
    "_reaper": "the hub keeps running",
}
VOLATILE_COLUMNS = {"created", "token_hash", "prefix"}  # differ between two fresh hubs (time, the secret)


def table_names(db: Database) -> list[str]:
    query = ("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'" if db.is_sqlite
             else "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
    with db.engine.connect() as c:
        return sorted(str(n) for n in c.execute(text(query)).scalars() if n not in KEPT_TABLES)


def reset_tables(db: Database) -> None:
    """Delete every row (but the schema's revision) and restart the identities: the next ids are 1 again."""
    names = table_names(db)
    with db.session() as s:
        if db.is_sqlite:
            s.execute(text("PRAGMA defer_foreign_keys = ON"))  # checked at the commit, when nothing is left
            for name in names:
                s.execute(text(f'DELETE FROM "{name}"'))
            # integer primary keys restart at max + 1 = 1; AUTOINCREMENT tables (none today) keep a counter
            if s.execute(text("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'")).first():
                s.execute(text("DELETE FROM sqlite_sequence"))
        else:
            s.execute(text("SET LOCAL lock_timeout = '30s'"))  # a lock left by a stray request fails, not hangs
            quoted = ", ".join(f'"{n}"' for n in names)
            s.execute(text(f"TRUNCATE {quoted} RESTART IDENTITY"))


def reset_files(data: Path, fresh: Listing) -> None:
    """Remove what a fresh hub's data directory does not hold, remake what it holds and a test removed, and
    give everything back its permissions."""
    for root, dirs, files in os.walk(data):
        for name in [*dirs, *files]:
            path = Path(root) / name
            if str(path.relative_to(data)) in fresh:
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        dirs[:] = [d for d in dirs if str((Path(root) / d).relative_to(data)) in fresh and
                   not (Path(root) == data and d == "gnupg")]
    for rel, (kind, mode) in sorted(fresh.items()):
        path = data / rel
        if kind == "d":
            path.mkdir(exist_ok=True)
        if kind != "l" and path.exists():
            os.chmod(path, mode)


def counters(metrics: HubMetrics) -> list[MetricWrapperBase]:
    """The hub's own counters and histograms (every one HubMetrics holds, also one added later)."""
    return [m for m in vars(metrics).values() if isinstance(m, MetricWrapperBase)]


def reset_metrics(metrics: HubMetrics) -> None:
    """Counts of a fresh hub: none (every metric has labels, so a fresh one has no series)."""
    for m in counters(metrics):
        m.clear()


def reset_hub(h: RunningHub) -> None:
    """Bring a running hub back to the state it had when it started (see the module's docstring)."""
    if not h.thread.is_alive() or h.server.should_exit:
        raise RuntimeError("the shared hub is not running: a test that stops the hub uses make_hub")
    for c in h.clients:
        c.close()
    h.clients.clear()
    hub = h.hub
    with hub.publisher.lock:
        reset_tables(hub.db)
        reset_metrics(hub.metrics)
        reset_files(h.settings.data, h.fresh)
        hub.tokens = auth.TokenCache(h.settings.data / "auth-epoch")
        old, hub.fetcher = hub.fetcher, sources.Fetcher(h.settings)
        old.close()
        hub.admin_token_path = hub._first_admin_token()  # what a first start does
    h.admin_token = (h.settings.data / "admin.token").read_text().strip()


def settings_changes(settings: HubSettings, before: HubSettings) -> list[str]:
    """The settings a test changed (restored to ``before``)."""
    changed = []
    for f in dataclasses.fields(HubSettings):
        if getattr(settings, f.name) != getattr(before, f.name):
            changed.append(f"{f.name}={getattr(settings, f.name)!r}")
            setattr(settings, f.name, getattr(before, f.name))
    return changed


def hub_state(h: RunningHub) -> dict[str, Any]:
    """Everything a test could see of a hub, but what differs between any two fresh hubs (where it lives,
    creation times, the admin token's secret)."""
    hub = h.hub
    tables: dict[str, list[dict[str, Any]]] = {}
    with hub.db.engine.connect() as c:
        for name in table_names(hub.db):
            rows = c.execute(text(f'SELECT * FROM "{name}" ORDER BY 1')).mappings()
            tables[name] = [{k: v for k, v in row.items() if k not in VOLATILE_COLUMNS} for row in rows]
        if hub.db.is_sqlite:
            seq = "SELECT name, seq FROM sqlite_sequence" if c.execute(
                text("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'")).first() else "SELECT 1 WHERE 0"
        else:
            seq = "SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = current_schema()"
        sequences = sorted(tuple(r) for r in c.execute(text(seq)))
    settings = {k: v for k, v in dataclasses.asdict(h.settings).items() if k not in ("data", "db_url")}
    return {
        "tables": tables,
        "sequences": sequences,
        "files": data_listing(h.settings.data),
        "hub attributes": sorted(vars(hub)),
        "settings": settings,
        "timing": (hub.timing.lease_seconds, hub.timing.heartbeat_seconds),
        "deb limits": (hub.deb_limits.control_bytes, hub.deb_limits.data_bytes),
        "cached tokens": (len(hub.tokens._entries), hub.tokens._epoch, hub.tokens.epoch()),
        "fetches": hub.fetcher._busy,
        "counts": sorted((s.name, sorted(s.labels.items()), s.value) for m in counters(hub.metrics)
                         for metric in m.collect() for s in metric.samples),
        "key": hub.key.fingerprint if hub.key else None,
        "threads": (hub.publisher._thread is not None and hub.publisher._thread.is_alive(),
                    hub._reaper is not None and hub._reaper.is_alive()),
        "admin token": (h.admin_token.startswith(auth.TOKEN_PREFIX),
                        (h.settings.data / "admin.token").read_text().strip() == h.admin_token),
    }
