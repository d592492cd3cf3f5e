"""Webhooks on the wire: what an admin sends to add one, and what the hub answers about them and their
deliveries (the secret is never answered)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from deb_orchestrator.wire.answers import Wire


class WebhookIn(BaseModel):
    url: str = Field(max_length=2000, description="http(s) URL the events are POSTed to")
    events: list[str] = Field(min_length=1, max_length=100,
                              description="event kinds, FAMILY.* (e.g. build.*) or * for all")
    secret: str = Field(min_length=16, max_length=500,
                        description="the HMAC-SHA256 key of the signature header; never shown again")


class WebhookDeliveryOut(Wire):
    id: int
    webhook_id: int
    event_id: int
    key: str = Field(description="the idempotency key (X-Deb-Orchestrator-Delivery), the same on every attempt")
    kind: str
    state: str = Field(description="pending, delivered or failed (attempts ran out)")
    attempts: int
    next_attempt: float | None
    last_attempt: float | None
    last_status: int | None = Field(description="the receiver's HTTP status at the last attempt")
    last_error: str | None
    created: float


class WebhookOut(Wire):
    id: int
    url: str
    events: list[str]
    enabled: bool
    created_by: str
    created: float
    pending: int
    delivered: int
    failed: int
    last_delivery: WebhookDeliveryOut | None
