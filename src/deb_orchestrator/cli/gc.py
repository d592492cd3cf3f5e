"""``deb-orchestrator gc [--dry-run] [--retain KIND=DAYS …]`` (the hub's POST /api/v1/gc), and the ``--retain``
syntax ``hub`` shares for its own retention (docs/operations.md "Retention: deb-orchestrator gc")."""

from __future__ import annotations

import argparse
import re
from dataclasses import replace
from typing import Any

from deb_orchestrator.cli.common import Subparsers, UsageError, add_command, arg, client, emit
from deb_orchestrator.hub.config import Retention
from deb_orchestrator.wire import GcReport

# --retain KIND -> the Retention field it sets
KINDS = {
    "untagged-builds": "untagged_build_days",
    "failed-builds": "failed_build_days",
    "logs": "log_days",
    "events": "event_days",
    "audit": "audit_days",
    "objects": "object_grace_days",
    "tmp": "tmp_days",
}
FOREVER = ("forever", "never")  # "keep forever", "never collect": the same
_DURATION = re.compile(r"^([0-9]+(?:\.[0-9]+)?)([dh]?)$")
RETAIN_HELP = (f"how long gc keeps one kind of thing: KIND is {', '.join(KINDS)}; DAYS a number of days, or "
               "with a unit (12h, 30d), or 'forever' (repeat)")


def parse_retain(items: list[str]) -> tuple[dict[str, float], list[str]]:
    """``KIND=DAYS`` items as (Retention field -> days, fields kept forever); a bad item is a UsageError."""
    days: dict[str, float] = {}
    forever: list[str] = []
    for item in items:
        kind, sep, value = item.partition("=")
        field = KINDS.get(kind.strip())
        if not sep or field is None:
            raise UsageError(f"--retain {item!r}: give KIND=DAYS with KIND one of {', '.join(KINDS)}")
        value = value.strip().lower()
        if value in FOREVER:
            if field in ("object_grace_days", "tmp_days"):
                raise UsageError(f"--retain {item!r}: {kind} cannot be kept forever (give a number of days)")
            forever.append(field)
            continue
        m = _DURATION.match(value)
        if m is None:
            raise UsageError(f"--retain {item!r}: {value!r} is not a duration (e.g. 30, 30d, 12h, forever)")
        days[field] = float(m.group(1)) / (24 if m.group(2) == "h" else 1)
    return days, forever


def retention_from(items: list[str]) -> Retention:
    """The hub's retention: the defaults with ``--retain`` items applied."""
    days, forever = parse_retain(items)
    values: dict[str, Any] = {**days, **dict.fromkeys(forever)}
    return replace(Retention(), **values)


def register(sub: Subparsers) -> None:
    add_command(sub, "gc", cmd_gc, "remove what the hub's retention lets go (admin; --dry-run says what)",
                arg("--dry-run", action="store_true", help="report what would be removed; remove nothing"),
                arg("--retain", action="append", default=[], metavar="KIND=DAYS",
                    help=RETAIN_HELP + "; overrides the hub's own (hub --retain) for this run"))


def cmd_gc(args: argparse.Namespace) -> int:
    days, forever = parse_retain(args.retain)
    with client(args) as hub:
        report = hub.gc(dry_run=args.dry_run, retention=days, keep_forever=forever)
    if args.json:
        emit(args, report)
    else:
        for line in lines(report):
            print(line)
    return 0


def size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


def lines(r: GcReport) -> list[str]:
    """What gc removed (or would), one line each, and a summary line last."""
    would = "would delete" if r.dry_run else "deleted"
    out = [f"build {b.ident} {would} (was {b.was}): {b.why}; {b.files} files, {size(b.bytes)}" for b in r.builds]
    out += [f"log of build {g.build}, task {g.task_id}: {g.name} ({size(g.size)})" for g in r.logs]
    out += [f"object {o.sha256} ({size(o.size)})" for o in r.objects]
    out += [f"tmp leftover {f.name} ({size(f.bytes)})" for f in r.tmp]
    out += [f"{table}: {n} old rows" for table, n in sorted(r.rows.items()) if n]
    counts: list[Any] = [f"{len(r.builds)} build(s) marked deleted", f"{len(r.logs)} log file(s)",
                         f"{r.log_tails} log tail(s)", f"{len(r.objects)} store object(s)",
                         f"{len(r.tmp)} tmp leftover(s)", *(f"{n} {t} row(s)" for t, n in sorted(r.rows.items()))]
    kept = f"; {r.kept_objects} unreferenced object(s) kept (new, or in a repository)" if r.kept_objects else ""
    out.append(f"{', '.join(counts)}: {'would free' if r.dry_run else 'freed'} {size(r.bytes)}{kept}")
    return out
