"""Webhooks (scope admin): add, list with their delivery state, remove, and a webhook's deliveries."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import select

from deb_orchestrator.hub import audit, webhooks
from deb_orchestrator.hub.api.common import hub_of
from deb_orchestrator.hub.auth import Principal, require
from deb_orchestrator.hub.models import Webhook, WebhookDelivery
from deb_orchestrator.states import AuditAction
from deb_orchestrator.wire.webhooks import WebhookDeliveryOut, WebhookIn, WebhookOut

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


@router.post("", status_code=201, summary="Add a webhook (scope admin); its secret is never shown again",
             response_model=WebhookOut)
def add_webhook(body: WebhookIn, request: Request,
                who: Principal = Depends(require("admin", AuditAction.WEBHOOK_CREATE))) -> dict[str, Any]:
    hub = hub_of(request)
    with hub.db.session() as s:
        hook = webhooks.create(s, body.url, body.events, body.secret, who.user, hub.settings.allow_webhook_hosts)
        out = webhooks.webhook_json(s, hook)
        audit.record(s, audit.actor(request), "webhook", hook.id, None,  # never the secret, nor the whole URL
                     audit.created(**audit.url_digest(body.url), events=out["events"]))
        return out


@router.get("", summary="Webhooks with their delivery state (scope admin)", response_model=list[WebhookOut])
def list_webhooks(request: Request,
                  who: Principal = Depends(require("admin", AuditAction.WEBHOOK_LIST))) -> list[dict[str, Any]]:
    with hub_of(request).db.session() as s:
        return [webhooks.webhook_json(s, h) for h in s.scalars(select(Webhook).order_by(Webhook.id))]


@router.delete("/{webhook_id}", summary="Remove a webhook and its deliveries not sent yet (scope admin)",
               response_model=WebhookOut)
def remove_webhook(webhook_id: int, request: Request,
                   who: Principal = Depends(require("admin", AuditAction.WEBHOOK_REMOVE))) -> dict[str, Any]:
    with hub_of(request).db.session() as s:
        out = webhooks.remove(s, webhook_id, who.user)
        audit.record(s, audit.actor(request), "webhook", webhook_id, None,
                     audit.removed(**audit.url_digest(out["url"]), events=out["events"], pending=out["pending"]))
        return out


@router.get("/{webhook_id}/deliveries", summary="A webhook's deliveries, newest first (scope admin)",
            response_model=list[WebhookDeliveryOut])
def list_deliveries(webhook_id: int, request: Request,
                    who: Principal = Depends(require("admin", AuditAction.WEBHOOK_LIST)),
                    state: str | None = None,
                    limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
    with hub_of(request).db.session() as s:
        webhooks.get(s, webhook_id)
        q = select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)
        if state:
            q = q.where(WebhookDelivery.state == state)
        return [webhooks.delivery_json(d) for d in s.scalars(q.order_by(WebhookDelivery.id.desc()).limit(limit))]
