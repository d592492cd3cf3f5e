"""Webhooks on a real hub (SQLite and PostgreSQL) with a real receiver on loopback: the URL rule, the admin
scope, signed deliveries with an idempotency key, retries with backoff, delivery state in the API and the CLI,
and at least once across a SIGKILL of the hub between the event's commit and its delivery."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from orch_hub import CLI, POSTGRES_URL, HubProcess, RunningHub, database_url, postgres_database

from deb_orchestrator.client import HubClient, HubError
from deb_orchestrator.hub.webhooks import KEY_HEADER, SIGNATURE_HEADER

HUB_SETTINGS = {"allow_webhook_hosts": ["127.0.0.1"], "webhook_retry_base": 0.2, "webhook_max_attempts": 3}
SECRET = "s3cret-s3cret-s3cret"


@dataclass
class Received:
    key: str
    kind: str
    signature: str
    body: bytes


@dataclass
class Receiver:
    """A webhook receiver on loopback. ``answer(n)`` gives the HTTP status of the n-th request (0-based); None
    holds the request unanswered until ``release`` is set. It drops a key it has seen (``unique``)."""

    url: str = ""
    answer: Callable[[int], int | None] = lambda n: 204
    requests: list[Received] = field(default_factory=list)
    unique: dict[str, Received] = field(default_factory=dict)
    release: threading.Event = field(default_factory=threading.Event)
    arrived: threading.Event = field(default_factory=threading.Event)

    def verified(self, r: Received, secret: str = SECRET) -> bool:
        expected = "sha256=" + hmac.new(secret.encode(), r.body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, r.signature)

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.unique) < count:
            assert time.monotonic() < deadline, f"{len(self.unique)} of {count} deliveries arrived: {self.requests}"
            time.sleep(0.05)
        return list(self.unique.values())


@contextmanager
def receiver(answer: Callable[[int], int | None] = lambda n: 204) -> Iterator[Receiver]:
    rec = Receiver(answer=answer)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            r = Received(self.headers[KEY_HEADER], self.headers["X-Deb-Orchestrator-Event"],
                         self.headers[SIGNATURE_HEADER], body)
            n = len(rec.requests)
            rec.requests.append(r)
            rec.arrived.set()
            status = rec.answer(n)
            if status is None:
                rec.release.wait(60)
                return  # the connection closes unanswered
            if 200 <= status < 300 and r.key not in rec.unique:  # a repeat is dropped by its key
                rec.unique[r.key] = r
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", rec.url + "/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    rec.url = f"http://127.0.0.1:{server.server_port}/hook"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield rec
    finally:
        rec.release.set()
        server.shutdown()
        server.server_close()


def test_adding_webhooks_is_for_admins_and_checks_the_url(hub: RunningHub) -> None:
    admin = hub.admin
    builder = hub.client(admin.create_token("alice", ["build"])["token"])
    with pytest.raises(HubError) as e:
        builder.add_webhook("http://127.0.0.1:9/hook", ["*"], SECRET)
    assert e.value.status == 403
    refused = {
        "http://10.1.2.3/hook": "not a public address",
        "http://localhost:9/hook": "hub --allow-webhook-host localhost",
        "http://user:pw@127.0.0.1:9/hook": "no user or password",
        "ftp://example.org/hook": "only http and https",
    }
    for url, why in refused.items():
        with pytest.raises(HubError) as e:
            admin.add_webhook(url, ["*"], SECRET)
        assert e.value.status == 400 and why in e.value.detail, (url, e.value.detail)
    with pytest.raises(HubError) as e:
        admin.add_webhook("http://127.0.0.1:9/hook", ["build.exploded"], SECRET)
    assert e.value.status == 400 and "unknown event kind 'build.exploded'" in e.value.detail
    with pytest.raises(HubError) as e:
        admin.add_webhook("http://127.0.0.1:9/hook", ["*"], "short")
    assert e.value.status == 422
    w = admin.add_webhook("http://127.0.0.1:9/hook", ["build.*", "repo.published"], SECRET)
    assert w.events == ["build.*", "repo.published"] and w.pending == 0
    listed = httpx.get(f"{hub.url}/api/v1/webhooks", headers={"Authorization": f"Bearer {hub.admin_token}"})
    assert SECRET not in listed.text and listed.json()[0]["url"] == "http://127.0.0.1:9/hook"
    assert httpx.get(f"{hub.url}/api/v1/webhooks").status_code == 401
    assert admin.remove_webhook(w.id).id == w.id and admin.webhooks() == []
    assert [e.kind for e in admin.events()][-2:] == ["webhook.created", "webhook.removed"]


def test_deliveries_are_signed_retried_and_visible(hub: RunningHub, tmp_path: Path) -> None:
    admin = hub.admin
    statuses = [302, 500]  # a redirect is not followed; then a server error; then accepted
    with receiver(lambda n: statuses[n] if n < len(statuses) else 204) as rec:
        secret_file = tmp_path / "secret"
        secret_file.write_text(SECRET + "\n")
        env = {**os.environ, "DEB_ORCHESTRATOR_HUB": hub.url, "DEB_ORCHESTRATOR_TOKEN": hub.admin_token}
        res = subprocess.run([*CLI, "add-webhook", rec.url, "--events", "tag.created", "--secret-file",
                              str(secret_file)], env=env, capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr
        assert "webhook 1 added" in res.stderr and SECRET not in res.stdout + res.stderr
        admin.add_tag("dest")
        admin.regen_repo("dest")  # not a kind the webhook wants
        [got] = rec.wait_for(1)
        event = json.loads(got.body)
        assert got.kind == event["kind"] == "tag.created" and event["data"] == {"parents": []}
        assert [r.key for r in rec.requests] == [got.key] * 3  # the same idempotency key on every attempt
        assert all(rec.verified(r) for r in rec.requests)
        tampered = Received(got.key, got.kind, got.signature, got.body.replace(b"tag.created", b"tag.deleted"))
        assert tampered.body != got.body
        assert not rec.verified(tampered) and not rec.verified(got, secret="another-secret-entirely")
        deadline = time.monotonic() + 10
        while (d := admin.webhook_deliveries(1)[0]).state != "delivered":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert (d.attempts, d.last_status, d.last_error, d.key, d.event_id) == (3, 204, None, got.key, event["id"])
        [w] = admin.webhooks()
        assert (w.delivered, w.pending, w.failed) == (1, 0, 0) and w.last_delivery is not None
        listing = subprocess.run([*CLI, "list-webhooks"], env=env, capture_output=True, text=True, timeout=60)
        assert listing.returncode == 0 and "delivered" in listing.stdout and "attempts 3" in listing.stdout
    # the receiver is gone: attempts run out (3 here), the delivery is failed and says why
    admin.add_tag("later")
    deadline = time.monotonic() + 20
    while (d := admin.webhook_deliveries(1)[0]).state != "failed":
        assert time.monotonic() < deadline, d
        time.sleep(0.1)
    assert d.attempts == 3 and "ConnectError" in (d.last_error or "")
    assert [x.state for x in admin.webhook_deliveries(1, state="failed")] == ["failed"]


@pytest.mark.integration
def test_a_webhook_survives_a_sigkill_between_commit_and_delivery(tmp_path: Path, signing_home: Path,
                                                                   db_kind: str) -> None:
    """The hub is killed while its delivery of a committed event is under way (the receiver holds the request);
    after a restart the sender (its lease expired) delivers it again with the same key, and the receiver keeps
    it once."""
    data = tmp_path / "data"
    shutil.copytree(signing_home, data / "gnupg", ignore=shutil.ignore_patterns("S.*", "*.lock"))
    with database_url(db_kind, data) as url, receiver(lambda n: None if n == 0 else 204) as rec:
        args = ("--db", url, "--allow-webhook-host", "127.0.0.1", "--webhook-lease", "2", "--webhook-retry", "0.5",
                "--log-level", "warning")
        hub = HubProcess(data, *args)
        try:
            with HubClient(hub.url, hub.token) as admin:
                admin.add_webhook(rec.url, ["tag.*"], SECRET)
                admin.add_tag("dest")
            assert rec.arrived.wait(20)  # committed, and its delivery is under way
            os.killpg(hub.proc.pid, signal.SIGKILL)
            hub.proc.wait(30)
        finally:
            hub.stop()
        assert rec.unique == {}
        rec.release.set()
        hub = HubProcess(data, *args)
        try:
            [got] = rec.wait_for(1, timeout=30)
            assert json.loads(got.body)["kind"] == "tag.created" and rec.verified(got)
            assert len(rec.requests) == 2 and rec.requests[0].key == rec.requests[1].key == got.key
            with HubClient(hub.url, hub.token) as admin:
                deadline = time.monotonic() + 10
                while (d := admin.webhook_deliveries(1)[0]).state != "delivered":
                    assert time.monotonic() < deadline, d
                    time.sleep(0.1)
                assert d.attempts == 1  # the attempt cut short by the kill was never recorded
        finally:
            hub.stop()




@pytest.mark.integration
def test_one_sender_and_every_stream_across_hub_workers(tmp_path: Path, signing_home: Path) -> None:
    """``hub --workers 2`` (PostgreSQL): events made through both workers reach an event stream open on one of
    them, and the webhook gets each exactly once (one sender holds the lease)."""
    from test_orch_events import SSE

    if not POSTGRES_URL:
        pytest.fail("this test needs PostgreSQL: set DEB_TEST_POSTGRES_URL (CI does)")
    data = tmp_path / "data"
    shutil.copytree(signing_home, data / "gnupg", ignore=shutil.ignore_patterns("S.*", "*.lock"))
    with postgres_database() as url, receiver() as rec:
        hub = HubProcess(data, "--db", url, "--workers", "2", "--allow-webhook-host", "127.0.0.1",
                         "--log-level", "warning")
        try:
            pids = {httpx.get(f"{hub.url}/api/v1/health").json()["pid"] for _ in range(40)}
            assert len(pids) == 2, "the kernel did not spread 40 connections over both workers"
            with HubClient(hub.url, hub.token) as admin:
                admin.add_webhook(rec.url, ["tag.created"], SECRET)
            stream = SSE(hub.url, {"kind": "tag.created"})
            try:
                for i in range(12):  # a new connection each: both workers record events
                    with HubClient(hub.url, hub.token) as c:
                        c.add_tag(f"t{i}")
                got = stream.events(12, timeout=30)
                assert sorted(e["object_id"] for e in got) == list(range(1, 13))
            finally:
                stream.close()
            rec.wait_for(12, timeout=30)
            time.sleep(1.0)
            assert len(rec.requests) == 12  # none twice
            assert sorted(json.loads(r.body)["object_id"] for r in rec.requests) == list(range(1, 13))
        finally:
            hub.stop()


def test_gc_drops_sent_deliveries_and_keeps_pending_ones(hub: RunningHub) -> None:
    admin = hub.admin
    with receiver() as fast, receiver(lambda n: None) as stuck:  # stuck holds every request: pending
        admin.add_webhook(fast.url, ["tag.created"], SECRET)
        admin.add_webhook(stuck.url, ["tag.created"], SECRET)
        admin.add_tag("dest")
        fast.wait_for(1)
        assert stuck.arrived.wait(10)
        deadline = time.monotonic() + 10
        while admin.webhook_deliveries(1)[0].state != "delivered":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        report = admin.gc(retention={"event_days": 0})
        assert report.rows["webhook_deliveries"] == 1
        assert admin.webhook_deliveries(1) == [] and [d.state for d in admin.webhook_deliveries(2)] == ["pending"]
        stuck.release.set()
