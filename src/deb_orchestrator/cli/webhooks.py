"""Webhooks (admin): add-webhook, list-webhooks (with their delivery state), remove-webhook, webhook-deliveries."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from deb_orchestrator.cli.common import Subparsers, UsageError, add_query, arg, when
from deb_orchestrator.client import HubClient
from debarchive.safeio import read_named_file


def register(sub: Subparsers) -> None:
    add_query(sub, "add-webhook", _add, "POST events to URL, signed with the secret in --secret-file (admin)", "url",
              arg("--events", required=True, metavar="KIND,…",
                  help="comma-separated event kinds, FAMILY.* (e.g. build.*) or * (see docs/operations.md)"),
              arg("--secret-file", required=True, metavar="FILE",
                  help="file holding the HMAC key (16 to 500 characters; e.g. `openssl rand -hex 32 > FILE`)"),
              told=lambda w, _: f"webhook {w.id} added: {w.url} gets {', '.join(w.events)}")
    add_query(sub, "list-webhooks", lambda hub, _: [_row(w) for w in hub.webhooks()],
              "list webhooks with their delivery state (admin)",
              columns=[("id", "ID"), ("url", "URL"), ("events", "Events"), ("pending", "Pending"),
                       ("delivered", "Delivered"), ("failed", "Failed"), ("last", "Last delivery")])
    add_query(sub, "remove-webhook", lambda hub, a: hub.remove_webhook(a.id),
              "remove a webhook by ID; deliveries not sent yet are dropped (admin)", arg("id", type=int),
              told=lambda w, _: f"webhook {w.id} ({w.url}) removed")
    add_query(sub, "webhook-deliveries", lambda hub, a: hub.webhook_deliveries(a.id, a.state, a.limit),
              "a webhook's deliveries, newest first (admin)", arg("id", type=int),
              arg("--state", choices=["pending", "delivered", "failed"]), arg("--limit", type=int, default=50),
              columns=[("id", "ID"), ("event_id", "Event"), ("kind", "Kind"), ("state", "State"),
                       ("attempts", "Attempts"), ("last_attempt", "Last attempt"), ("last_status", "HTTP"),
                       ("last_error", "Error"), ("key", "Key")])


def _add(hub: HubClient, args: argparse.Namespace) -> Any:
    try:
        secret = read_named_file(Path(args.secret_file), 4096).decode().strip()
    except OSError as exc:
        raise UsageError(f"--secret-file {args.secret_file}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UsageError(f"--secret-file {args.secret_file}: not text") from None
    return hub.add_webhook(args.url, [e for e in args.events.split(",") if e.strip()], secret)


def _row(w: Any) -> dict[str, Any]:
    d = w.last_delivery
    if d is None:
        return {**w.model_dump(mode="json"), "last": "-"}
    status = f", HTTP {d.last_status}" if d.last_status else ""
    error = f", {d.last_error}" if d.last_error and d.state != "delivered" else ""
    last = f"{d.state} {when(d.last_attempt)} (event {d.event_id}, attempts {d.attempts}{status}{error})"
    return {**w.model_dump(mode="json"), "last": last}
