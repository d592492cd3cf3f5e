"""``--metrics-textfile FILE``: how a compose ended, for node_exporter's textfile collector.

After every run (finished, failed, interrupted or refused as bad input) the file is replaced as a whole
(written beside it, then renamed: node_exporter never reads half a file), so it always describes the last
run of the manifest. The ``manifest`` label is the --config file's name: one file per scheduled compose
(``/var/lib/prometheus/node-exporter/compose-minimal.prom``) keeps their series apart.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.exposition import write_to_textfile

from deb_bootc_compose import phaserecord, status
from deb_bootc_compose.errors import ComposeError
from deb_bootc_compose.phaserecord import PhaseOutcome
from deb_bootc_compose.phases.base import ImageRecord


@dataclass
class ComposeRun:
    """What one run of the compose CLI did (``status`` empty: no compose was started, e.g. a bad manifest)."""

    manifest: str
    exit_code: int
    status: str = ""
    compose_id: str = ""
    seconds: float = 0.0
    ended: float = field(default_factory=time.time)
    phases: list[PhaseOutcome] = field(default_factory=list)
    images: list[ImageRecord] = field(default_factory=list)

    @property
    def failed_phase(self) -> str:
        return next((p.name for p in self.phases if p.state == phaserecord.FAILED), "")


def check_path(path: Path) -> None:
    """Refuse, before composing, a file node_exporter would never read or that cannot be written."""
    if path.suffix != ".prom":
        raise ComposeError(f"--metrics-textfile {path}: the name must end in .prom (node_exporter's textfile "
                           "collector reads only those)")
    if not path.parent.is_dir():
        raise ComposeError(f"--metrics-textfile {path}: no directory {path.parent} (point it at node_exporter's "
                           "--collector.textfile.directory)")
    if path.is_dir():
        raise ComposeError(f"--metrics-textfile {path}: is a directory")


def registry(run: ComposeRun) -> CollectorRegistry:
    reg = CollectorRegistry()
    m = run.manifest

    def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
        return Gauge(name, doc, ["manifest", *labels], registry=reg)

    gauge("deb_bootc_compose_success", "1 when the last compose ended FINISHED, else 0").labels(m).set(
        1 if run.status == status.FINISHED else 0)
    gauge("deb_bootc_compose_exit_code", "Exit status of the last compose (0 FINISHED, 1 failed, 2 bad input, "
          "3 FINISHED_INCOMPLETE, 130 interrupted)").labels(m).set(run.exit_code)
    gauge("deb_bootc_compose_last_run_timestamp_seconds", "When the last compose ended (seconds since the "
          "epoch)").labels(m).set(run.ended)
    gauge("deb_bootc_compose_duration_seconds", "Seconds the last compose took").labels(m).set(run.seconds)
    gauge("deb_bootc_compose_info", "The last compose: its ID, STATUS (none: not started, bad input) and the phase "
          "that failed", ("compose_id", "status", "failed_phase")).labels(
        m, run.compose_id, run.status or "none", run.failed_phase).set(1)
    phases = gauge("deb_bootc_compose_phase_duration_seconds", "Seconds each phase of the last compose ran "
                   "(phases that ran, the failed one included)", ("phase",))
    for p in run.phases:
        if p.seconds is not None:
            phases.labels(m, p.name).set(p.seconds)
    sizes = gauge("deb_bootc_compose_image_size_bytes", "Size of each deliverable of the last compose",
                  ("variant", "arch", "format"))
    for img in run.images:
        sizes.labels(m, img.variant, img.arch, img.format).set(img.size)
    return reg


def write(path: Path, run: ComposeRun) -> None:
    """Replace ``path`` atomically (a temporary file beside it, then a rename)."""
    write_to_textfile(str(path), registry(run))
