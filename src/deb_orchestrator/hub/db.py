"""Database engine, sessions and migrations (Alembic, applied programmatically on start).

SQLite: WAL, a busy timeout and ``BEGIN IMMEDIATE`` for every transaction, so writers are serialized
and claims are atomic. PostgreSQL: claims use ``SELECT … FOR UPDATE SKIP LOCKED`` (see scheduler.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"
FACTS = "deb_orchestrator.metrics"  # Session.info key of what a transaction noted for the metrics
EVENTS_RECORDED = "deb_orchestrator.events"  # Session.info key set by events.insert_event
AFTER_COMMIT = "deb_orchestrator.after_commit"  # Session.info key: callables run after the commit (hub plugins)
HOOKS = "deb_orchestrator.hooks"  # Session.info key: the hub's plugins (hub/plugins/hooks.py)
POOL_SIZE = 20  # PostgreSQL connections kept per hub process; also the cap on concurrent request threads


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {}
        if self.is_sqlite:
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 60}
        else:
            # per hub process; with --workers N there are N pools, so keep each modest (PostgreSQL's
            # default max_connections is 100 for everything on the server). Requests never hold more
            # than POOL_SIZE connections (app.py caps the request threads), so no connection is opened
            # and closed per request: that churn cost PostgreSQL more than the queries themselves.
            kwargs.update(pool_size=POOL_SIZE, max_overflow=10, pool_recycle=1800)
        self.engine: Engine = create_engine(url, **kwargs)
        if self.is_sqlite:
            _sqlite_pragmas(self.engine)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        # what a committed transaction noted for the metrics (hub/metrics.py note()), handed over after the commit
        self.on_commit: Callable[[list[Any]], None] | None = None
        # called after the commit of a transaction that recorded an event (events.py): wakes the event streams
        self.on_events: Callable[[], None] | None = None
        # the hub's plugins (hub/plugins/hooks.py HubHooks), handed to every session; None: the built-in ones
        self.hooks: Any = None

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed when the block ends, rolled back on an exception."""
        with self.sessions() as s:
            if self.hooks is not None:
                s.info[HOOKS] = self.hooks
            with s.begin():
                yield s
            facts = s.info.pop(FACTS, None)
            recorded = s.info.pop(EVENTS_RECORDED, None)
            later = s.info.pop(AFTER_COMMIT, None)
        if facts and self.on_commit is not None:
            self.on_commit(facts)
        if recorded and self.on_events is not None:
            self.on_events()
        for call in later or ():
            call()  # hub plugins' after-hooks: each catches and logs its own errors

    def migrate(self) -> None:
        upgrade(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def alembic_config(engine: Engine | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if engine is not None:
        cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest revision (a no-op when it is there already)."""
    command.upgrade(alembic_config(engine), "head")
