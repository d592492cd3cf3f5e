"""The webhook sender: one per hub, whatever the number of hub processes (docs/operations.md).

Every hub process runs a :class:`Sender` thread; only the one holding the lease row ``hub_leases.webhooks``
sends. The lease is taken and renewed with one conditional UPDATE (it works the same on SQLite and
PostgreSQL), renewed before every attempt, and given up on a clean stop; when its holder dies, another
process (or the restarted hub) takes it over once it expired. A process looks at the outbox (one cheap query)
when an event was committed and every ``poll`` seconds, and takes the lease only when a delivery is due.

An attempt: POST the stored body, signed, with a timeout; a 2xx answer marks the delivery delivered, anything
else (including a redirect: never followed) is a failed attempt, retried after ``retry_base * 2**(attempts-1)``
seconds (at most an hour) until ``max_attempts``, then the delivery is failed. A crash between the receiver's
answer and the mark sends it again: at least once, with the same idempotency key.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass

import httpx
from sqlalchemy import insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from deb_orchestrator.hub import webhooks
from deb_orchestrator.hub.db import Database
from deb_orchestrator.hub.errors import HubError
from deb_orchestrator.hub.models import Lease, Webhook, WebhookDelivery
from deb_orchestrator.hub.notify import Signal

log = logging.getLogger("deb_orchestrator.hub.webhooks")
LEASE = "webhooks"
MAX_BACKOFF = 3600.0
ERROR_CHARS = 500


@dataclass(frozen=True)
class SenderSettings:
    lease_seconds: float = 30.0
    retry_base: float = 10.0
    max_attempts: int = 12
    timeout: float = 10.0  # one attempt, connection included
    poll: float = 1.0
    allowed_hosts: tuple[str, ...] = ()


def backoff(attempts: int, base: float) -> float:
    return float(min(base * 2 ** max(attempts - 1, 0), MAX_BACKOFF))


class Sender:
    def __init__(self, db: Database, wakeup: Signal, settings: SenderSettings) -> None:
        self.db, self.wakeup, self.settings = db, wakeup, settings
        self.me = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sent = 0  # attempts made by this process (tests, logs)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="webhook-sender", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.wakeup.notify_local()
        if self._thread is not None:
            self._thread.join(timeout=self.settings.timeout + 5)
        try:
            with self.db.session() as s:
                s.execute(update(Lease).where(Lease.name == LEASE, Lease.holder == self.me).values(expires=0.0))
        except Exception:  # the database may be gone already; the lease expires by itself
            log.debug("could not give the webhook lease up", exc_info=True)

    def _loop(self) -> None:
        with httpx.Client(follow_redirects=False, timeout=httpx.Timeout(self.settings.timeout),
                          headers={"User-Agent": "deb-orchestrator-hub"}) as client:
            while not self._stop.is_set():
                seen = self.wakeup.generation
                try:
                    while not self._stop.is_set() and self._due() and self._hold():
                        if not self._send_one(client):
                            break
                except Exception:
                    log.exception("webhook sender failed; trying again")
                self.wakeup.wait_sync(seen, self.settings.poll)

    def _due(self) -> int | None:
        with self.db.session() as s:
            return s.scalar(select(WebhookDelivery.id).where(WebhookDelivery.state == "pending",
                                                             WebhookDelivery.next_attempt <= time.time())
                            .order_by(WebhookDelivery.next_attempt, WebhookDelivery.id).limit(1))

    def _hold(self) -> bool:
        """Take or renew the lease; False when another process holds it."""
        now = time.time()
        with self.db.session() as s:
            renewed = s.execute(update(Lease).where(Lease.name == LEASE, or_(Lease.holder == self.me,
                                                                                Lease.expires < now))
                                .values(holder=self.me, expires=now + self.settings.lease_seconds))
            if renewed.rowcount:  # type: ignore[attr-defined]
                return True
            if s.get(Lease, LEASE) is not None:
                return False
        try:
            with self.db.session() as s:
                s.execute(insert(Lease).values(name=LEASE, holder=self.me, expires=now + self.settings.lease_seconds))
            return True
        except IntegrityError:  # another process made the row first
            return False

    def _send_one(self, client: httpx.Client) -> bool:
        """Attempt the most overdue delivery; False when none is due."""
        with self.db.session() as s:
            row = s.execute(select(WebhookDelivery.id, WebhookDelivery.key, WebhookDelivery.kind,
                                   WebhookDelivery.body, WebhookDelivery.attempts, Webhook.url, Webhook.secret)
                            .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
                            .where(WebhookDelivery.state == "pending", WebhookDelivery.next_attempt <= time.time())
                            .order_by(WebhookDelivery.next_attempt, WebhookDelivery.id).limit(1)).one_or_none()
        if row is None:
            return False
        status, error = self._post(client, row.url, row.secret, row.key, row.kind, row.body.encode())
        self.sent += 1
        now = time.time()
        attempts = row.attempts + 1
        values: dict[str, object] = {"attempts": attempts, "last_attempt": now, "last_status": status,
                                     "last_error": error}
        if error is None:
            values["state"] = "delivered"
        elif attempts >= self.settings.max_attempts:
            values["state"] = "failed"
            log.warning("webhook delivery %s to %s failed for good after %d attempts: %s", row.key, row.url,
                        attempts, error)
        else:
            values["next_attempt"] = now + backoff(attempts, self.settings.retry_base)
        with self.db.session() as s:
            s.execute(update(WebhookDelivery).where(WebhookDelivery.id == row.id).values(**values))
        return True

    def _post(self, client: httpx.Client, url: str, secret: str, key: str, kind: str,
              body: bytes) -> tuple[int | None, str | None]:
        """One attempt: (HTTP status or None, None when delivered else why not)."""
        try:
            webhooks.check_url(url, list(self.settings.allowed_hosts))
        except HubError as exc:
            return None, exc.message[:ERROR_CHARS]
        headers = {"Content-Type": "application/json", webhooks.KEY_HEADER: key, webhooks.EVENT_HEADER: kind,
                   webhooks.SIGNATURE_HEADER: webhooks.signature(secret, body)}
        try:
            with client.stream("POST", url, content=body, headers=headers) as resp:
                status = resp.status_code
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"[:ERROR_CHARS]
        if 200 <= status < 300:
            return status, None
        what = "a redirect (not followed)" if 300 <= status < 400 else "not 2xx"
        return status, f"the receiver answered {status}: {what}"
