"""The hub's counters and histograms (prometheus_client) and the registry ``GET /metrics`` exposes.

Counters and histograms count events: a task started or finished, a repository published, an HTTP request.
The scheduler notes what happened on its database session (:func:`note`); :class:`~deb_orchestrator.hub.db.
Database` hands the notes over only after the transaction committed, so a rolled-back claim is never counted.
Gauges (queue by state, builders, repositories) are read from the database at scrape time (``dbgauges.py``).

``deb-orchestrator hub`` runs in prometheus_client's multiprocess mode (:func:`enable_multiprocess`): every
worker writes its counts to files in DATA/metrics (emptied at start) and whichever worker answers a scrape
adds up all of them, so ``--workers N`` reports the whole hub. A hub made in-process without the CLI (tests)
keeps its counts in its own objects.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, values
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session
from starlette.routing import Mount

from deb_mock.api import RETRYABLE_EXIT_CODES, ExitCode
from deb_orchestrator.hub.db import FACTS

disable_created_metrics()  # no *_created series: Prometheus' text format carries them as noise gauges
WAIT_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400)
DURATION_BUCKETS = (1, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800)
PUBLISH_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

Fact = Callable[["HubMetrics"], None]


def enable_multiprocess(directory: Path) -> None:
    """Count in files under ``directory`` (emptied first) from now on, in this process and the workers it
    forks. Call it before any :class:`HubMetrics` is made: prometheus_client picks a metric's storage when
    the metric is created."""
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("*.db"):  # counts of an earlier run (its processes are gone)
        old.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    if not getattr(values.ValueClass, "_multiprocess", False):
        values.ValueClass = values.MultiProcessValue()


def multiprocess_dir() -> Path | None:
    if getattr(values.ValueClass, "_multiprocess", False) and os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    return None


def result_of(exit_code: int) -> str:
    """The ``result`` label of a finished attempt: deb-mock's result states (``ResultState``)."""
    if exit_code == ExitCode.SUCCESS:
        return "success"
    if exit_code == ExitCode.DEP_WAIT:
        return "dep-wait"
    if exit_code in RETRYABLE_EXIT_CODES:
        return "error"
    return "failed"


class HubMetrics:
    """One hub's counters and histograms and the registry /metrics collects from."""

    def __init__(self) -> None:
        self.multiprocess = multiprocess_dir()
        self.task_wait = Histogram(
            "deb_orchestrator_task_wait_seconds", "Seconds from a task's submission until a builder started it "
            "(first attempts of the tasks builders run)", ["arch"], buckets=WAIT_BUCKETS, registry=None)
        self.task_duration = Histogram(
            "deb_orchestrator_task_duration_seconds", "Seconds a builder worked on an attempt, by its result "
            "(success, failed, dep-wait, error; lost: the lease expired)", ["result"], buckets=DURATION_BUCKETS,
            registry=None)
        self.repo_publish = Histogram(
            "deb_orchestrator_repo_publish_seconds", "Seconds to publish a tag's apt repository, by result "
            "(success, failed)", ["result"], buckets=PUBLISH_BUCKETS, registry=None)
        self.http_requests = Counter(
            "deb_orchestrator_http_requests", "HTTP requests answered, by method, route (its template) and "
            "status code", ["method", "handler", "code"], registry=None)
        self.registry = CollectorRegistry()
        if self.multiprocess is not None:
            MultiProcessCollector(self.registry, path=str(self.multiprocess))
        else:
            for metric in (self.task_wait, self.task_duration, self.repo_publish, self.http_requests):
                self.registry.register(metric)

    def add(self, collector: Collector) -> None:
        self.registry.register(collector)

    def apply(self, facts: Iterable[Fact]) -> None:
        for fact in facts:
            fact(self)

    def request(self, method: str, handler: str, status: int) -> None:
        self.http_requests.labels(method if method in HTTP_METHODS else "other", handler, str(status)).inc()


def note(session: Session, fact: Fact) -> None:
    """Count ``fact`` once the session's transaction has committed (never if it rolls back)."""
    session.info.setdefault(FACTS, []).append(fact)


def task_started(session: Session, arch: str, waited: float) -> None:
    note(session, lambda m: m.task_wait.labels(arch).observe(max(waited, 0.0)))


def task_finished(session: Session, result: str, seconds: float) -> None:
    note(session, lambda m: m.task_duration.labels(result).observe(max(seconds, 0.0)))


class RequestCounter:
    """ASGI middleware: counts every answered request by method, route template and status (bounded labels:
    unknown methods are ``other``, paths that match no route ``unmatched``)."""

    def __init__(self, app: Any, metrics: HubMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 0

        async def counting_send(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            self.metrics.request(scope.get("method", ""), handler_of(scope), status or 500)


def handler_of(scope: Any) -> str:
    """The template of the route that answered (``/api/v1/tasks/{task_id}``), never the path itself.

    The router leaves the route on the request's scope. A route of an included router may carry its path
    without the prefix it was included under (newer FastAPI): the prefix is then the leading segments of
    the request's path that the template does not account for (the hub's prefixes hold no parameters)."""
    route = scope.get("route")
    template = getattr(route, "path", None)
    if not template:
        return "unmatched"
    if isinstance(route, Mount) or template == "/":
        return str(template)
    path = str(scope.get("path", "")).strip("/").split("/")
    own = str(template).strip("/").split("/")
    if len(path) <= len(own):
        return str(template)
    return "/" + "/".join(path[:len(path) - len(own)]) + str(template)
