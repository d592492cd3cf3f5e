"""``metadata/phases.json``: every phase of the compose, in order, with what became of it.

States: ``done`` (ran, with its seconds) · ``skipped`` (left out by ``--skip-phase``/``--just-phase``; the
reason names the option) · ``not-needed`` (the phase found nothing to do, e.g. no disk output asked for) ·
``reused`` (a no-op recompose took its results from an earlier compose) · ``failed`` · ``not-run`` (the
compose stopped before it). Written before STATUS turns FINISHED (or DOOMED), in productmd's envelope.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from deb_bootc_compose.metadata import write_json
from deb_bootc_compose.paths import ComposePaths

PHASES_TYPE, PHASES_VERSION = "deb-bootc-compose.phases", "1.0"
DONE, SKIPPED, NOT_NEEDED, REUSED, FAILED, NOT_RUN = "done", "skipped", "not-needed", "reused", "failed", "not-run"


@dataclass
class PhaseOutcome:
    name: str
    state: str
    seconds: float | None = None
    reason: str | None = None

    def to_json(self) -> dict[str, object]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def write(paths: ComposePaths, compose_status: str, names: list[str], outcomes: list[PhaseOutcome],
          skipped: dict[str, str]) -> None:
    """The record of one compose; phases of ``names`` without an outcome are ``not-run``."""
    known = {o.name: o for o in outcomes}
    rows = [known.get(name, PhaseOutcome(name, NOT_RUN)).to_json() for name in names]
    write_json(paths.phases_json, {
        "header": {"type": PHASES_TYPE, "version": PHASES_VERSION},
        "payload": {"compose": {"id": paths.compose_id, "status": compose_status}, "phases": rows,
                    "skipped": list(skipped)},  # in phase order; the reasons are in "phases"
    })
