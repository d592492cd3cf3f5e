"""``audit``: the hub's audit log (who changed what, when, from where; refused attempts), newest first."""

from __future__ import annotations

import argparse
import json
import re
import time
from datetime import datetime
from typing import Any

from deb_orchestrator.cli.common import Subparsers, UsageError, add_command, arg, client, emit, plain, when
from deb_orchestrator.states import AuditAction

COLUMNS = [("id", "ID"), ("when", "Time"), ("user", "User"), ("client", "Client"), ("action", "Action"),
           ("what", "Object"), ("changes", "Changes"), ("outcome", "Outcome")]
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def register(sub: Subparsers) -> None:
    add_command(sub, "audit", cmd_audit, "the audit log, newest first (admin token)",
                arg("--since", metavar="ISO-TIME", help="from this time: 2026-12-05T10:00 (local time unless it "
                    "names a zone, e.g. Z), or a span back from now: 30m, 2h, 7d"),
                arg("--until", metavar="ISO-TIME", help="before this time (same forms)"),
                arg("--user", metavar="NAME", help="only this user's actions (hosts are host/NAME)"),
                arg("--action", metavar="A", choices=sorted(AuditAction),
                    help=f"only this action: {', '.join(sorted(AuditAction))}"),
                arg("--object", metavar="KIND[:NAME|ID]", help="e.g. build:hello_2.10-3, task:7, host"),
                arg("--limit", type=int, default=100, help="at most this many records (default 100, up to 1000)"),
                arg("--before", type=int, metavar="ID", help="records older than this one (the next page)"))


def since_seconds(text: str, option: str, now: float | None = None) -> float:
    """Seconds since the epoch for ``--since``/``--until``: a span back from now (``90s``, ``30m``, ``2h``,
    ``7d``, ``1w``), or ISO 8601 (local time unless it names a zone)."""
    span = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text)
    if span:
        return (now if now is not None else time.time()) - float(span.group(1)) * UNITS[span.group(2)]
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"{option} {text!r}: give an ISO 8601 time (2026-12-05T10:00, 2026-12-05T10:00Z) or a "
                         "span back from now (30m, 2h, 7d)") from None
    return (parsed if parsed.tzinfo else parsed.astimezone()).timestamp()


def _value(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    return json.dumps(v, separators=(",", ":"), default=str)


def _row(r: dict[str, Any]) -> dict[str, Any]:
    obj = r.get("object") or {}
    what = " ".join(str(x) for x in (obj.get("kind"), obj.get("name") or obj.get("id")) if x) or "-"
    if r.get("outcome") == "refused":
        outcome = f"refused {r.get('status')}" + (f" ×{r['count']}" if r.get("count", 1) > 1 else "")
        changes = r.get("reason") or ""
    else:
        outcome = "done"
        changes = "; ".join(f"{k}: {_value(old)} → {_value(new)}" for k, (old, new) in (r.get("changes") or {}).items())
    return {"id": r["id"], "when": when(r["ts"]), "user": r.get("user") or "-",
            "client": r["client"] + (" (web)" if r.get("via") == "web" else ""),
            "action": r["action"], "what": what, "changes": changes, "outcome": outcome}


def cmd_audit(args: argparse.Namespace) -> int:
    since = since_seconds(args.since, "--since") if args.since else None
    until = since_seconds(args.until, "--until") if args.until else None
    if not 1 <= args.limit <= 1000:
        raise UsageError(f"--limit {args.limit}: give 1 to 1000")
    with client(args) as hub:
        records = plain(hub.audit(since=since, until=until, user=args.user, action=args.action, obj=args.object,
                                  before=args.before, limit=args.limit))
    if args.json:
        emit(args, records)
    else:
        emit(args, [_row(r) for r in records], COLUMNS)
    return 0
