"""The compose STATUS file (Pungi's values)."""

from __future__ import annotations

from deb_bootc_compose.paths import ComposePaths

STARTED = "STARTED"
FINISHED = "FINISHED"
FINISHED_INCOMPLETE = "FINISHED_INCOMPLETE"
DOOMED = "DOOMED"
VALUES = (STARTED, FINISHED, FINISHED_INCOMPLETE, DOOMED)


def write(paths: ComposePaths, value: str) -> None:
    if value not in VALUES:
        raise ValueError(f"unknown compose status {value!r}")
    paths.topdir.mkdir(parents=True, exist_ok=True)
    tmp = paths.status.with_suffix(".tmp")
    tmp.write_text(value + "\n")
    tmp.replace(paths.status)


def read(paths: ComposePaths) -> str | None:
    try:
        return paths.status.read_text().strip()
    except FileNotFoundError:
        return None
