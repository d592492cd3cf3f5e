"""The builder's own metrics, served by ``builder --metrics-listen ADDR:PORT`` at ``/metrics`` (Prometheus'
text format): builds run and their durations by result, builds running now, its slots, its state, failed
requests to the hub. The hub's /metrics tells the farm's view; this one tells what one builder itself saw."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily, StateSetMetricFamily
from prometheus_client.exposition import start_http_server
from prometheus_client.registry import Collector

disable_created_metrics()  # no *_created series: Prometheus' text format carries them as noise gauges
DURATION_BUCKETS = (1, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800)
STATES = ("starting", "idle", "building", "stopping")


class _Now(Collector):
    """What the builder is doing, read when scraped."""

    def __init__(self, state: Callable[[], str], running: Callable[[], int], slots: int,
                 last_contact: Callable[[], float | None]) -> None:
        self.state, self.running, self.slots, self.last_contact = state, running, slots, last_contact

    def collect(self) -> Iterator[Any]:
        now = self.state()
        yield StateSetMetricFamily("deb_orchestrator_builder_state", "What the builder is doing (starting, idle: "
                                   "waiting for a task, building, stopping)", {s: s == now for s in STATES})
        yield GaugeMetricFamily("deb_orchestrator_builder_builds_running", "Tasks the builder is running now",
                                value=self.running())
        yield GaugeMetricFamily("deb_orchestrator_builder_slots", "Tasks the builder runs at once (--capacity)",
                                value=self.slots)
        seen = self.last_contact()
        if seen is not None:
            yield GaugeMetricFamily("deb_orchestrator_builder_hub_last_contact_seconds", "Seconds since the hub "
                                    "last answered this builder", value=max(time.time() - seen, 0.0))


class BuilderMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.builds = Counter("deb_orchestrator_builder_builds", "Tasks the builder ran to an end, by result "
                              "(success, failed, dep-wait, error; lost: the hub took the attempt back or canceled "
                              "it; handed-back: given back when the builder stopped)", ["result"],
                              registry=self.registry)
        self.duration = Histogram("deb_orchestrator_builder_build_duration_seconds", "Seconds from claiming a task "
                                  "to reporting it, by result", ["result"], buckets=DURATION_BUCKETS,
                                  registry=self.registry)
        self.hub_errors = Counter("deb_orchestrator_builder_hub_errors", "Requests to the hub that failed "
                                  "(claims, heartbeats, reports)", registry=self.registry)
        self.contact: float | None = None  # when the hub last answered
        self._server: Any = None

    def watch(self, state: Callable[[], str], running: Callable[[], int], slots: int) -> None:
        self.registry.register(_Now(state, running, slots, lambda: self.contact))

    def finished(self, result: str, seconds: float) -> None:
        self.builds.labels(result).inc()
        self.duration.labels(result).observe(max(seconds, 0.0))

    def heard_from_hub(self) -> None:
        self.contact = time.time()

    def serve(self, host: str, port: int) -> None:
        """Serve /metrics on HOST:PORT from a thread (OSError when the address cannot be bound)."""
        self._server, _thread = start_http_server(port, addr=host, registry=self.registry)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
