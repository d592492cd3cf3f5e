"""The running hub: database, store, signing key, signals, publisher and lease reaper, set up once.

With several hub worker processes (``deb-orchestrator hub --workers N``, PostgreSQL) every process
serves the API; only the primary one publishes repositories and reaps expired leases. On PostgreSQL the
signals travel between processes through LISTEN/NOTIFY (see notify.py).
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from pathlib import Path

from sqlalchemy import select, update

from deb_orchestrator.hub import auth, packages, scheduler, sources
from deb_orchestrator.hub.config import HubSettings
from deb_orchestrator.hub.db import Database
from deb_orchestrator.hub.dbgauges import DatabaseGauges
from deb_orchestrator.hub.metrics import HubMetrics
from deb_orchestrator.hub.models import Repo, Tag, Task, Token
from deb_orchestrator.hub.notify import PgBridge, Signal
from deb_orchestrator.hub.plugins import loader as plugin_loader
from deb_orchestrator.hub.plugins.hooks import HubHooks
from deb_orchestrator.hub.repos import RepoPublisher
from deb_orchestrator.hub.store import Store
from deb_orchestrator.hub.webhook_sender import Sender, SenderSettings
from deb_orchestrator.states import RepoState, TaskState
from debarchive.signing import SigningKey

REPO_KEY_UID = "deb-orchestrator repository signing key <repo@localhost>"

log = logging.getLogger("deb_orchestrator.hub")


def _sqlite_path(url: str) -> Path | None:
    if not url.startswith("sqlite:///") or url.endswith(":memory:"):
        return None
    return Path(url.removeprefix("sqlite:///").split("?", 1)[0])


def private_files(settings: HubSettings, sqlite: Path | None) -> list[str]:
    """Make what holds secrets private, also when an older hub (or a restore, or a copy) left it readable:
    the admin token (0600), the signing key's GnuPG home (0700, its files 0600) and the SQLite database with
    its journal files (0600; it holds token hashes, users and every build). Returns what was changed."""
    changed = []

    def fix(path: Path, mode: int) -> None:
        try:
            st = path.lstat()
        except FileNotFoundError:
            return
        if stat.S_ISLNK(st.st_mode) or stat.S_ISSOCK(st.st_mode) or stat.S_IMODE(st.st_mode) & ~mode == 0:
            return
        os.chmod(path, stat.S_IMODE(st.st_mode) & mode)
        changed.append(str(path))

    fix(settings.data / "admin.token", 0o600)
    if settings.gnupg_dir.is_dir():
        fix(settings.gnupg_dir, 0o700)
        for root, dirs, files in os.walk(settings.gnupg_dir):
            for d in dirs:
                fix(Path(root) / d, 0o700)
            for f in files:
                fix(Path(root) / f, 0o600)
    if sqlite is not None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            fix(sqlite.with_name(sqlite.name + suffix), 0o600)
    if changed:
        log.warning("made private (they were readable by others): %s", ", ".join(changed))
    return changed


class Hub:
    def __init__(self, settings: HubSettings, *, primary: bool = True) -> None:
        self.settings = settings
        self.primary = primary
        settings.data.mkdir(parents=True, exist_ok=True)
        self._sqlite = _sqlite_path(settings.database_url)
        if self._sqlite is not None:  # created private (SQLite would make it 0644 under the usual umask)
            os.close(os.open(self._sqlite, os.O_RDWR | os.O_CREAT, 0o600))
        self.plugins = HubHooks(plugin_loader.load(settings.plugins))  # before the database: a wrong plugin stops here
        self.db = Database(settings.database_url)
        self.db.hooks = self.plugins
        self.db.migrate()
        self.metrics = HubMetrics()
        self.metrics.add(DatabaseGauges(self.db, settings))
        self.db.on_commit = self.metrics.apply
        self.store = Store(settings.store_dir)
        old_umask = os.umask(0o077)  # a new key's files are private from the start (still one thread here)
        try:
            self.key = SigningKey.ensure(settings.gnupg_dir, uid=REPO_KEY_UID) if settings.publish_repos else None
        finally:
            os.umask(old_umask)
        private_files(settings, self._sqlite)
        self.work = Signal()  # free tasks appeared
        self.repos_changed = Signal()  # a repo was published
        self.events = Signal()  # an event was committed (event streams, the webhook sender)
        self.db.on_events = self.events.notify
        self.webhooks = Sender(self.db, self.events, SenderSettings(
            settings.webhook_lease_seconds, settings.webhook_retry_base, settings.webhook_max_attempts,
            allowed_hosts=tuple(settings.allow_webhook_hosts)))
        self.timing = scheduler.Timing(settings.lease_seconds, settings.heartbeat_seconds)
        self.publisher = RepoPublisher(self.db, self.store, settings.repos_dir, self.key, settings.origin,
                                       self.work, self.repos_changed, self.metrics)
        self.fetcher = sources.Fetcher(settings)
        self.tokens = auth.TokenCache(settings.data / "auth-epoch")
        self.deb_limits = packages.Limits(settings.max_deb_control_bytes, settings.max_deb_data_bytes)
        self.bridge: PgBridge | None = None
        if not self.db.is_sqlite:
            self.bridge = PgBridge(settings.database_url)
            self.bridge.attach("work", self.work)
            self.bridge.attach("repos_changed", self.repos_changed)
            self.bridge.attach("repos_dirty", self.publisher.wakeup)
            self.bridge.attach("events", self.events)
        self.admin_token_path: Path | None = self._first_admin_token()
        self._stop = threading.Event()
        self._reaper: threading.Thread | None = None

    def _first_admin_token(self) -> Path | None:
        """On first start, create an admin token and write it to DATA/admin.token (mode 0600)."""
        path = self.settings.data / "admin.token"
        with self.db.session() as s:
            if s.scalar(select(Token.id).limit(1)) is not None:
                return path if path.exists() else None
            secret, _ = auth.issue_token(s, "admin", ["admin"], name="first admin token")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secret + "\n")
            os.chmod(path, 0o600)
        return path

    def start(self) -> None:
        if self.bridge is not None:
            self.bridge.start()
        self.webhooks.start()  # in every process: the one holding the lease sends
        if not self.primary:
            return
        with self.db.session() as s:
            # a publication may have been cut short by the stop: publish every repo once
            for tag in s.scalars(select(Tag)):
                repo = s.scalar(select(Repo).where(Repo.tag_id == tag.id))
                if repo is None:
                    s.add(Repo(tag_id=tag.id, dirty=True))
                else:
                    repo.dirty = True
                    if repo.state == RepoState.FAILED:  # e.g. cut short by the stop (gpg killed): published again now
                        repo.state = RepoState.PENDING
            # builders could not heartbeat while the hub was down: give running tasks a fresh lease
            s.execute(update(Task).where(Task.state == TaskState.OPEN, Task.lease_expires.is_not(None))
                      .values(lease_expires=time.time() + self.settings.lease_seconds))
        if self.settings.publish_repos:
            self.publisher.start()
        self._reaper = threading.Thread(target=self._reap_loop, name="lease-reaper", daemon=True)
        self._reaper.start()

    def stopping(self) -> bool:
        return self._stop.is_set()

    def stop(self) -> None:
        self._stop.set()
        self.webhooks.stop()
        self.fetcher.close()
        if self.primary:
            self.publisher.stop()
        if self._reaper is not None:
            self._reaper.join(timeout=10)
        if self.bridge is not None:
            self.bridge.stop()
        self.db.dispose()

    def _reap_loop(self) -> None:
        while not self._stop.wait(self.settings.reap_interval):
            try:
                with self.db.session() as s:
                    requeued = scheduler.reap(s)
                if requeued:
                    log.info("requeued tasks with expired leases: %s", requeued)
                    self.work.notify()
            except Exception:
                log.exception("lease reaper failed")

    def repos_dirty(self) -> None:
        self.publisher.wakeup.notify()
