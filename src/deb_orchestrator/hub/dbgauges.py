"""Gauges read from the database when /metrics is scraped: the queue by state and architecture, the builders
and their heartbeats, the tag repositories, the data directory's free space. Every hub worker reads the same
database, so whichever answers a scrape gives the whole hub's figures."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from deb_orchestrator.hub.config import HubSettings
from deb_orchestrator.hub.db import Database
from deb_orchestrator.hub.models import Host, Repo, Task
from deb_orchestrator.states import LEAF_METHODS, RepoState, TaskState

BUILDER_STATES = ("ready", "busy", "disabled", "lost")


def builder_state(enabled: bool, last_heartbeat: float | None, running: int, now: float, lease: float) -> str:
    """``disabled`` by its admin; ``lost``: enabled but silent for longer than a lease (or never seen);
    ``busy``: running at least one task; ``ready``: alive and idle."""
    if not enabled:
        return "disabled"
    if last_heartbeat is None or now - last_heartbeat > lease:
        return "lost"
    return "busy" if running else "ready"


class DatabaseGauges(Collector):
    def __init__(self, db: Database, settings: HubSettings) -> None:
        self.db = db
        self.settings = settings

    def collect(self) -> Iterator[Any]:
        now = time.time()
        with self.db.session() as s:  # read everything in one transaction, then let the registry have it
            families = [*self._tasks(s, now), *self._builders(s, now), *self._repos(s)]
        yield from families
        yield from self._disk()

    def _tasks(self, s: Session, now: float) -> Iterator[GaugeMetricFamily]:
        leaf = Task.method.in_(LEAF_METHODS)
        counts = {(state, arch): n for state, arch, n in s.execute(
            select(Task.state, Task.arch, func.count()).where(leaf).group_by(Task.state, Task.arch))}
        oldest = {arch: created for arch, created in s.execute(
            select(Task.arch, func.min(Task.created)).where(leaf, Task.state == TaskState.FREE).group_by(Task.arch))}
        arches = sorted({arch for _, arch in counts})
        tasks = GaugeMetricFamily("deb_orchestrator_tasks", "Tasks builders run (buildArch, noop), by state and "
                                  "architecture", labels=["state", "arch"])
        for arch in arches:
            for state in TaskState:
                tasks.add_metric([state.value, arch], counts.get((state.value, arch), 0))
        yield tasks
        age = GaugeMetricFamily("deb_orchestrator_task_oldest_free_seconds", "Seconds the oldest task waiting "
                                "for a builder has waited since its submission (0: none waits)", labels=["arch"])
        for arch in arches:
            created = oldest.get(arch)
            age.add_metric([arch], max(now - created, 0.0) if created is not None else 0.0)
        yield age

    def _builders(self, s: Session, now: float) -> Iterator[GaugeMetricFamily]:
        running = (select(func.count()).select_from(Task)
                   .where(Task.host_id == Host.id, Task.state == TaskState.OPEN).scalar_subquery())
        hosts = s.execute(select(Host.name, Host.enabled, Host.capacity, Host.last_heartbeat, running.label("running"))
                          .order_by(Host.name)).all()
        states = dict.fromkeys(BUILDER_STATES, 0)
        heartbeat = GaugeMetricFamily("deb_orchestrator_builder_last_heartbeat_seconds", "Seconds since the hub "
                                      "last heard from a builder host (hosts never heard from are left out)",
                                      labels=["host"])
        enabled = GaugeMetricFamily("deb_orchestrator_builder_enabled", "1 when a builder host is enabled",
                                    labels=["host"])
        capacity = GaugeMetricFamily("deb_orchestrator_builder_capacity", "Tasks a builder host may run at once",
                                     labels=["host"])
        load = GaugeMetricFamily("deb_orchestrator_builder_running_tasks", "Tasks a builder host is running",
                                 labels=["host"])
        for h in hosts:
            states[builder_state(h.enabled, h.last_heartbeat, h.running, now, self.settings.lease_seconds)] += 1
            if h.last_heartbeat is not None:
                heartbeat.add_metric([h.name], max(now - h.last_heartbeat, 0.0))
            enabled.add_metric([h.name], 1 if h.enabled else 0)
            capacity.add_metric([h.name], h.capacity)
            load.add_metric([h.name], h.running)
        builders = GaugeMetricFamily("deb_orchestrator_builders", "Builder hosts by state (ready, busy, disabled, "
                                     "lost: enabled but silent for longer than a lease)", labels=["state"])
        for state, n in states.items():
            builders.add_metric([state], n)
        yield from (builders, heartbeat, enabled, capacity, load)

    def _repos(self, s: Session) -> Iterator[GaugeMetricFamily]:
        counts = {state: n for state, n in s.execute(select(Repo.state, func.count()).group_by(Repo.state))}
        repos = GaugeMetricFamily("deb_orchestrator_repos", "Tag repositories by the state of their last "
                                  "publication (pending, ready, failed)", labels=["state"])
        for state in RepoState:
            repos.add_metric([state.value], counts.get(state.value, 0))
        yield repos

    def _disk(self) -> Iterator[GaugeMetricFamily]:
        try:
            st = os.statvfs(self.settings.data)
        except OSError:
            return
        yield GaugeMetricFamily("deb_orchestrator_data_filesystem_avail_bytes", "Bytes available to the hub on the "
                                "file system of its data directory", value=st.f_bavail * st.f_frsize)
        yield GaugeMetricFamily("deb_orchestrator_data_filesystem_size_bytes", "Size of the file system of the "
                                "hub's data directory in bytes", value=st.f_blocks * st.f_frsize)
