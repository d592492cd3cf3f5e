"""Webhooks: which events, which URLs (the rule below), their signature, and their delivery state.

What is sent: ``POST URL`` with the event as JSON (the shape of ``GET /api/v1/events``) and the headers
``X-Deb-Orchestrator-Delivery`` (the idempotency key: the same on every retry of one delivery; a receiver drops
a key it has seen), ``X-Deb-Orchestrator-Event`` (the kind) and ``X-Deb-Orchestrator-Signature``
(``sha256=`` and the hex HMAC-SHA256 of the body with the webhook's secret). The outbox is written in the
event's transaction (events.py); webhook_sender.py sends it.

Which URLs: ``http``/``https`` without user or password in them; the host must resolve to public addresses
only, unless it is named with ``hub --allow-webhook-host HOST[:PORT]`` (a receiver on the hub's own network, on
loopback for tests). Checked when a webhook is added and before every attempt (the name may resolve
differently later); redirects are not followed.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import socket
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from deb_orchestrator.hub import events, sources
from deb_orchestrator.hub.errors import HubError, NotFound
from deb_orchestrator.hub.models import Webhook, WebhookDelivery

SIGNATURE_HEADER = "X-Deb-Orchestrator-Signature"
KEY_HEADER = "X-Deb-Orchestrator-Delivery"
EVENT_HEADER = "X-Deb-Orchestrator-Event"
MIN_SECRET = 16  # characters
MAX_SECRET = 500
# every kind of event the hub records (docs/operations.md); task.<state> comes from a finished attempt
KINDS = frozenset({
    "build.submitted", "build.canceled", "build.resubmitted", "build.failed", "build.complete", "build.dep-wait",
    "build.deleted",
    "task.claimed", "task.canceled", "task.released", "task.requeued", "task.closed", "task.failed", "task.dep-wait",
    "tag.created", "tag.edited", "tag.deleted", "tag.build-added", "tag.build-removed",
    "repo.regen-requested", "repo.published", "repo.failed", "target.created", "target.deleted",
    "host.created", "host.edited", "token.created", "token.revoked", "webhook.created", "webhook.removed",
})
FAMILIES = frozenset(k.split(".", 1)[0] for k in KINDS)


def check_patterns(patterns: list[str]) -> list[str]:
    """Event kinds, ``FAMILY.*`` or ``*``; HubError 400 naming the first unknown one."""
    out = []
    for p in (x.strip() for x in patterns):
        if not p:
            continue
        if p != "*" and p not in KINDS and not (p.endswith(".*") and p[:-2] in FAMILIES):
            raise HubError(f"unknown event kind {p!r}: give kinds ({', '.join(sorted(KINDS))}), FAMILY.* "
                           f"({', '.join(sorted(FAMILIES))}) or *")
        if p not in out:
            out.append(p)
    if not out:
        raise HubError("no event kinds given: name at least one (e.g. build.complete, build.*, or *)")
    return out


def signature(secret: str, body: bytes) -> str:
    """The signature header's value: ``sha256=`` and the hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def check_url(url: str, allowed: list[str], *, resolve: bool = True) -> None:
    """The rule for webhook URLs (module docstring); HubError 400 saying why not."""
    parts, host, port = sources.split_url(url)
    if parts.username or parts.password:
        raise HubError(f"webhook URL {url!r}: no user or password in the URL (the receiver checks the signature)")
    if host in allowed or f"{host}:{port}" in allowed:
        return
    if not resolve:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise HubError(f"webhook URL {url!r}: cannot resolve {host}: {exc}") from None
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if not address.is_global:
            raise HubError(
                f"webhook URL {url!r}: {host} is {address}, not a public address; a receiver on the hub's own "
                f"network must be allowed by the hub's admin with `hub --allow-webhook-host {host}`")


def create(session: Session, url: str, patterns: list[str], secret: str, actor: str,
           allowed: list[str]) -> Webhook:
    if not MIN_SECRET <= len(secret) <= MAX_SECRET or secret != secret.strip():
        raise HubError(f"webhook secret: give {MIN_SECRET} to {MAX_SECRET} characters without surrounding blanks "
                       "(e.g. `openssl rand -hex 32 > secret`)")
    kinds = check_patterns(patterns)
    check_url(url, allowed)
    hook = Webhook(url=url, events="," + ",".join(kinds) + ",", secret=secret, created_by=actor)
    session.add(hook)
    session.flush()
    events.record(session, "webhook.created", "webhook", hook.id, actor, url=url, events=kinds)
    return hook


def get(session: Session, webhook_id: int) -> Webhook:
    hook = session.get(Webhook, webhook_id)
    if hook is None:
        raise NotFound(f"no webhook {webhook_id} (see list-webhooks)")
    return hook


def remove(session: Session, webhook_id: int, actor: str) -> dict[str, Any]:
    """Delete a webhook with its deliveries (those not sent yet are dropped)."""
    hook = get(session, webhook_id)
    out = webhook_json(session, hook)
    session.execute(delete(WebhookDelivery).where(WebhookDelivery.webhook_id == hook.id))
    session.delete(hook)
    events.record(session, "webhook.removed", "webhook", webhook_id, actor, url=out["url"])
    return out


def webhook_json(session: Session, hook: Webhook) -> dict[str, Any]:
    """A webhook without its secret, with its delivery state: counts per state and its latest attempt."""
    counts: dict[str, int] = {state: n for state, n in session.execute(
        select(WebhookDelivery.state, func.count()).where(WebhookDelivery.webhook_id == hook.id)
        .group_by(WebhookDelivery.state))}
    last = session.scalar(select(WebhookDelivery).where(WebhookDelivery.webhook_id == hook.id,
                                                        WebhookDelivery.last_attempt.is_not(None))
                          .order_by(WebhookDelivery.last_attempt.desc()).limit(1))
    return {"id": hook.id, "url": hook.url, "events": [e for e in hook.events.split(",") if e],
            "enabled": hook.enabled, "created_by": hook.created_by, "created": hook.created,
            "pending": counts.get("pending", 0), "delivered": counts.get("delivered", 0),
            "failed": counts.get("failed", 0), "last_delivery": None if last is None else delivery_json(last)}


def delivery_json(d: WebhookDelivery) -> dict[str, Any]:
    return {"id": d.id, "webhook_id": d.webhook_id, "event_id": d.event_id, "key": d.key, "kind": d.kind,
            "state": d.state, "attempts": d.attempts, "next_attempt": d.next_attempt if d.state == "pending" else None,
            "last_attempt": d.last_attempt, "last_status": d.last_status, "last_error": d.last_error,
            "created": d.created}
