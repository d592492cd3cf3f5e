"""Hub settings: where data lives, which database, and the scheduler's timings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


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
