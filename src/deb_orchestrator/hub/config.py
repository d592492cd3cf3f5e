"""Hub settings: where data lives, which database, and the scheduler's timings."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_LISTEN = "127.0.0.1:8080"  # what `deb-orchestrator hub` listens on without --listen


@dataclass
class Retention:
    """What `deb-orchestrator gc` keeps (docs/operations.md "Retention"): days per kind; None keeps it forever.
    ``hub --retain KIND=DAYS`` sets them, a gc call may override each. A new table with a retention of its own
    adds a field here and an entry in hub/gc.py's ``TABLES``."""

    untagged_build_days: float | None = 30.0  # complete builds in no tag, since completed or last untagged
    failed_build_days: float | None = 14.0  # failed and canceled builds, since they ended
    log_days: float | None = 60.0  # log files and log tails of finished tasks of builds in no tag
    event_days: float | None = 90.0  # rows of the event log
    audit_days: float | None = 365.0  # rows of the audit log (a gc's own record is written after it ran)
    object_grace_days: float = 1 / 24  # a store object no row names yet may be an upload under way
    tmp_days: float = 1.0  # leftovers in DATA/store/tmp (an upload or fetch cut short)


@dataclass
class HubSettings:
    data: Path
    db_url: str | None = None  # default: sqlite:///DATA/hub.db
    lease_seconds: float = 45.0  # a builder that stops heartbeating loses its task after this long
    heartbeat_seconds: float = 10.0  # how often builders heartbeat (told to them with every claim)
    reap_interval: float = 1.0
    max_attempts: int = 3  # infrastructure errors (exit 4) are retried up to this many attempts in all
    origin: str = "deb-orchestrator"
    publish_repos: bool = True
    workers: int = 1  # hub processes serving the API (more than one needs PostgreSQL)
    # limits on what users and builders send (docs/security.md)
    max_upload_bytes: int = 2 << 30  # one uploaded file (builder result, or a whole source upload), counted as read
    max_task_bytes: int = 32 << 30  # all files one task (its attempts together) uploads
    max_deb_control_bytes: int = 64 << 20  # an uploaded .deb's control.tar, unpacked
    max_deb_data_bytes: int = 8 << 30  # an uploaded .deb's data.tar, unpacked
    allow_source_hosts: list[str] = field(default_factory=list)  # besides the hosts of the targets' external repos
    source_max_bytes: int = 2 << 30  # a source package fetched by URL, all its files together
    source_timeout: float = 600.0  # seconds for fetching one source package by URL, all files together
    source_fetch_workers: int = 2  # source packages fetched at once (a pool apart from the request threads)
    source_fetch_queue: int = 8  # submissions waiting for a fetch slot before the hub answers 503
    verify_source: bool = True  # authenticate .dsc URLs (signed index or signature); False: --no-verify-source
    source_keyrings: list[str] = field(default_factory=list)  # keys that may sign a .dsc in no signed index
    # GET /metrics (docs/operations.md): anonymous unless this is set (then any valid token may scrape)
    metrics_token_required: bool = False
    retention: Retention = field(default_factory=Retention)  # deb-orchestrator gc
    # events and webhooks (docs/operations.md)
    event_stream: bool = True  # GET /api/v1/events/stream; False: hub --no-event-stream (clients poll)
    allow_webhook_hosts: list[str] = field(default_factory=list)  # besides hosts with public addresses only
    webhook_lease_seconds: float = 30.0  # a dead sender's deliveries are taken over after this long
    webhook_retry_base: float = 10.0  # seconds before the first retry; doubled each time, at most an hour
    webhook_max_attempts: int = 12
    # the audit log (hub/audit.py): proxies whose forwarding header names the client (hub --trusted-proxy), the
    # header they set (x-forwarded-for or forwarded), and the window within which refused attempts of one client
    # and action share one record
    trusted_proxies: list[str] = field(default_factory=list)
    forwarded_header: str = "x-forwarded-for"
    audit_refused_window: float = 60.0
    # hub plugins (docs/plugins.md): the third-party ones to load, with their options (hub --plugin NAME,
    # --plugin-option NAME:KEY=VALUE); the built-in ones always run
    plugins: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def database_url(self) -> str:
        return self.db_url or f"sqlite:///{self.data / 'hub.db'}"

    @property
    def repos_dir(self) -> Path:
        return self.data / "repos"

    @property
    def store_dir(self) -> Path:
        return self.data / "store"

    @property
    def gnupg_dir(self) -> Path:
        return self.data / "gnupg"

    @property
    def metrics_dir(self) -> Path:
        """Where the hub's processes keep their counters and histograms (prometheus_client's multiprocess
        mode), so that /metrics answers for all workers; emptied whenever `deb-orchestrator hub` starts."""
        return self.data / "metrics"
