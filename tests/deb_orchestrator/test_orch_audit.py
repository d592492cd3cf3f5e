"""The audit log against a real hub (SQLite and PostgreSQL): a record for every kind of change, with who, from
where and what changed, and no secret; refused attempts (401, 403) recorded once per client, action and window
and counted; a change that rolls back leaves no record; proxy headers only from a trusted proxy; the API's
filters and pages; the CLI."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from orch_helpers import FakeBuilder, make_source
from orch_hub import HubProcess, RunningHub
from sqlalchemy import text

from deb_orchestrator.cli import main
from deb_orchestrator.client import HubError
from deb_orchestrator.hub import audit
from deb_orchestrator.states import AuditAction

# the module's hub trusts 127.0.0.2 as a proxy; the tests' clients connect from 127.0.0.1 unless they bind .2
HUB_SETTINGS = {"trusted_proxies": ["127.0.0.2"], "allow_webhook_hosts": ["127.0.0.1:9"]}
MIRROR = "http://deb.debian.org/debian"
KEY = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBFAKEKEYMATERIAL\n-----END PGP PUBLIC KEY BLOCK-----\n"
REFUSAL_ONLY = {AuditAction.TASK_HEARTBEAT, AuditAction.TOKEN_LIST, AuditAction.AUDIT_READ, AuditAction.WHOAMI,
                AuditAction.METRICS_SCRAPE, AuditAction.WEBHOOK_LIST}
HOOK_URL = "http://127.0.0.1:9/hooks/T0SECRETPATH?token=QUERYSECRET"  # a URL that is a credential itself
WEB_ONLY = {AuditAction.SESSION_CREATE, AuditAction.SESSION_END}  # signing in to the web pages: test_orch_webui.py


def records(hub: RunningHub, **filters: Any) -> list[dict[str, Any]]:
    """Every record matching ``filters``, oldest first."""
    return [r.to_json() for r in reversed(hub.admin.audit(limit=1000, **filters))]


def by_action(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(r["action"], []).append(r)
    return out


def raw_audit_table(hub: RunningHub) -> str:
    with hub.hub.db.engine.connect() as c:
        return json.dumps([list(map(str, row)) for row in c.execute(text("SELECT * FROM audit"))])


def refuse(call: Any) -> int:
    with pytest.raises(HubError) as err:
        call()
    return err.value.status


def test_every_change_is_recorded(hub: RunningHub, tmp_path: Path) -> None:
    admin = hub.admin
    started = time.time()
    admin.add_tag("base", external_repos=[{"url": MIRROR, "suite": "trixie", "components": ["main"], "key": KEY}])
    admin.add_tag("dest", parents=["base"])
    admin.add_tag("build", parents=["dest"])
    admin.request("PATCH", "/tags/base", json={"arches": ["amd64", "arm64"]})
    admin.add_target("t", "build", "dest")
    admin.edit_target("t", plugins={"lintian": {"fail-on": "none"}}, request_plugins=["autopkgtest"])
    host = admin.add_host("b1", ["amd64"])
    alice = admin.create_token("alice", ["build"], "alice's laptop")
    as_alice = hub.client(alice["token"])
    sub = as_alice.submit("t", make_source(tmp_path, "orch-audit-a", "1.0"))
    again = as_alice.submit("t", make_source(tmp_path / "again", "orch-audit-a", "1.0"))
    assert again["existing"]
    fb = FakeBuilder(hub.client(host["token"]), tmp_path / "fb")
    claim = fb.claim()
    assert claim is not None
    fb.finish(claim, 0)
    admin.wait_task(sub["task"]["id"], timeout=60)
    admin.tag_build("base", "orch-audit-a_1.0")
    admin.untag_build("base", "orch-audit-a_1.0")
    admin.regen_repo("dest")
    sub_b = as_alice.submit("t", make_source(tmp_path, "orch-audit-b", "1.0"))
    as_alice.cancel_build("orch-audit-b_1.0")
    resubmitted = as_alice.resubmit("orch-audit-b_1.0")
    as_alice.cancel_task(resubmitted["task"]["id"])
    admin.gc(dry_run=True)  # changes nothing: no record
    admin.gc(retention={"failed_build_days": 0})
    noop = admin.noop(1)
    noop_claim = fb.claim()
    assert noop_claim is not None and noop_claim["task_id"] == noop[0]
    hub.client(host["token"]).release(noop[0], noop_claim["fence"], "builder stopping")
    admin.edit_host("b1", enabled=False)
    admin.edit_host("b1", enabled=True, capacity=2)
    admin.revoke_token(alice["id"])
    hook = admin.add_webhook(HOOK_URL, ["tag.*"], "a-webhook-secret-of-32-characters!")
    admin.remove_webhook(hook["id"])
    admin.remove_target("t")
    admin.remove_tag("build")
    ended = time.time()

    rows = records(hub)
    assert {r["action"] for r in rows} == set(AuditAction) - REFUSAL_ONLY - WEB_ONLY  # every kind of change
    for r in rows:
        assert r["outcome"] == "done" and r["status"] is None and r["count"] == 1 and r["reason"] is None
        assert r["client"] == "127.0.0.1" and r["peer"] == "127.0.0.1"
        assert started <= r["ts"] <= ended and r["time"] == audit.iso(r["ts"])
    # no secret anywhere: tokens (nor the prefix list-tokens shows), key material
    dumped = json.dumps(rows) + raw_audit_table(hub)
    for secret in (hub.admin_token, alice["token"], host["token"]):
        assert secret[:10] not in dumped
    for secret in ("FAKEKEYMATERIAL", "a-webhook-secret", "T0SECRETPATH", "QUERYSECRET"):
        assert secret not in dumped

    a = by_action(rows)
    admin_id = admin.whoami()["token_id"]
    tag_base = a["tag.create"][0]
    assert (tag_base["user"], tag_base["token_id"], tag_base["object"]) == \
        ("admin", admin_id, {"kind": "tag", "id": 1, "name": "base"})
    assert tag_base["changes"] == {
        "arches": [None, ["amd64"]], "parents": [None, []],
        "external_repos": [None, [{"url": MIRROR, "suite": "trixie", "components": ["main"],
                                   "key": audit.key_digest(KEY)}]]}
    assert a["tag.create"][2]["changes"]["parents"] == [None, ["dest"]]
    assert a["tag.edit"][0]["changes"] == {"arches": [["amd64"], ["amd64", "arm64"]]}
    assert a["target.create"][0]["object"]["name"] == "t"
    assert a["target.create"][0]["changes"] == {"build_tag": [None, "build"], "dest_tag": [None, "dest"]}
    assert a["target.edit"][0]["changes"] == {"plugins": [{}, {"lintian": {"fail-on": "none"}}],
                                              "request_plugins": [[], ["autopkgtest"]]}
    host_token_id = next(t["id"] for t in admin.tokens() if t["user"] == "host/b1")
    assert a["host.create"][0]["object"] == {"kind": "host", "id": host["id"], "name": "b1"}
    assert a["host.create"][0]["changes"] == {"arches": [None, ["amd64"]], "capacity": [None, 1],
                                              "enabled": [None, True], "token_id": [None, host_token_id]}
    assert a["token.create"][0]["object"] == {"kind": "token", "id": alice["id"], "name": "alice"}
    assert a["token.create"][0]["changes"] == {"user": [None, "alice"], "scopes": [None, ["build"]],
                                               "name": [None, "alice's laptop"]}

    first, repeat = a["build.submit"][:2]
    build_a = admin.build("orch-audit-a_1.0")
    for r in (first, repeat):
        assert (r["user"], r["token_id"]) == ("alice", alice["id"])
        assert r["object"] == {"kind": "build", "id": build_a["id"], "name": "orch-audit-a_1.0"}
    assert first["changes"] == {"state": [None, "building"], "target": [None, "t"], "task": [None, sub["task"]["id"]],
                                "arches": [None, ["amd64"]], "priority": [None, 20],
                                "requested_by": [None, "upload:orch-audit-a_1.0.dsc"], "source_trust": [None, "caller"],
                                "plugins": [None, {"lintian": {"fail-on": "none"}}]}  # the target's (edit-target)
    assert repeat["changes"] == {}  # submitted before: nothing changed

    claims = a["task.claim"]
    assert [(r["user"], r["token_id"], r["object"]["id"]) for r in claims] == \
        [("host/b1", host_token_id, claim["task_id"]), ("host/b1", host_token_id, noop[0])]
    assert claims[0]["changes"] == {"state": ["free", "open"], "host": [None, "host/b1"], "fence": [0, 1]}
    uploads = a["task.upload"]
    assert {name for r in uploads for name in r["changes"]} == {"orch-audit-a_1.0_all.deb", "build.log"}
    for r in uploads:  # new files: nothing was there before
        assert r["object"]["id"] == claim["task_id"] and next(iter(r["changes"].values()))[0] is None
    assert a["task.complete"][0]["changes"] == {"state": ["open", "closed"],
                                                "result": [None, {"state": "success", "exit_code": 0}]}
    assert a["build.tag"][0]["changes"] == {"tags": [None, "base"]}
    assert a["build.untag"][0]["changes"] == {"tags": ["base", None]}
    assert a["build.tag"][0]["object"]["name"] == "orch-audit-a_1.0"
    assert a["repo.regen"][0]["object"]["name"] == "dest" and a["repo.regen"][0]["changes"]["dirty"][1] is True

    cancel = a["build.cancel"][0]
    assert cancel["user"] == "alice" and cancel["object"]["name"] == "orch-audit-b_1.0"
    assert cancel["changes"]["state"] == ["building", "canceled"]
    assert sub_b["task"]["id"] in cancel["changes"]["canceled_tasks"][1]
    assert a["build.resubmit"][0]["changes"] == {"state": ["canceled", "building"],
                                                 "task": [sub_b["task"]["id"], resubmitted["task"]["id"]]}
    task_cancel = a["task.cancel"][0]
    assert task_cancel["object"] == {"kind": "task", "id": resubmitted["task"]["id"], "name": None}
    assert task_cancel["changes"]["state"] == ["open", "canceled"]
    assert len(a["hub.gc"]) == 1 and a["hub.gc"][0]["object"] == {"kind": "hub", "id": None, "name": "gc"}
    assert a["hub.gc"][0]["changes"]["deleted_builds"] == [None, ["orch-audit-b_1.0"]]
    assert set(a["hub.gc"][0]["changes"]) == {"deleted_builds", "log_files", "rows_deleted"}
    assert a["task.noop"][0]["changes"] == {"tasks": [None, noop], "arch": [None, "amd64"], "priority": [None, 20]}
    assert a["task.release"][0]["changes"] == {"state": ["open", "free"], "host": ["host/b1", None],
                                               "reason": [None, "builder stopping"]}
    assert [r["changes"] for r in a["host.edit"]] == [{"enabled": [True, False]},
                                                      {"enabled": [False, True], "capacity": [1, 2]}]
    assert a["token.revoke"][0]["object"]["id"] == alice["id"]
    assert a["token.revoke"][0]["changes"] == {"revoked": [False, True]}
    hook_url = {"url": "http://127.0.0.1:9/…", "url_sha256": hashlib.sha256(HOOK_URL.encode()).hexdigest()}
    assert a["webhook.create"][0]["object"] == {"kind": "webhook", "id": hook["id"], "name": None}
    assert a["webhook.create"][0]["changes"] == audit.created(**hook_url, events=["tag.*"])
    assert a["webhook.remove"][0]["changes"] == audit.removed(**hook_url, events=["tag.*"], pending=0)
    assert a["target.remove"][0]["changes"] == {"build_tag": ["build", None], "dest_tag": ["dest", None],
                                                "builds": [["orch-audit-a_1.0", "orch-audit-b_1.0"], None]}
    assert a["tag.remove"][0]["changes"] == {"arches": [["amd64"], None], "parents": [["dest"], None],
                                             "external_repos": [[], None], "builds": [[], None],
                                             "children": [[], None]}


def test_every_change_declares_its_action(hub: RunningHub) -> None:
    """Every route that may change something checks a token with ``auth.require(scope, action)``: nothing can
    change without its action's refusals being recorded and an actor for the route's record."""

    def actions(dependant: Any) -> list[Any]:
        found = [getattr(dependant.call, "audit_action", None)]
        return [a for a in found if a] + [a for d in dependant.dependencies for a in actions(d)]

    def routes(of: list[Any]) -> list[Any]:  # included routers: inline (older FastAPI) or wrapped (newer)
        found = []
        for r in of:
            inner = getattr(r, "original_router", None)
            found += routes(inner.routes) if inner is not None else [r]
        return found

    app: Any = hub.server.config.app
    changing = [r for r in routes(app.routes) if getattr(r, "dependant", None) and set(r.methods) - {"GET", "HEAD"}]
    assert len(changing) >= 24
    undeclared = [f"{sorted(r.methods)} {r.path}" for r in changing if not actions(r.dependant)]
    assert undeclared == []


def test_refused_attempts_are_recorded_once_per_window(hub: RunningHub, tmp_path: Path) -> None:
    admin = hub.admin
    admin.add_tag("dest")
    admin.add_target("t", "dest", "dest")
    admin.submit("t", make_source(tmp_path, "orch-audit-r", "1.0"))
    alice = admin.create_token("alice", ["build"])
    carol = admin.create_token("carol", ["tag"])
    admin.revoke_token(carol["id"])
    api = f"{hub.url}/api/v1"
    for _ in range(3):
        assert httpx.post(f"{api}/tags", json={"name": "x"}).status_code == 401  # no token
    bad = {"Authorization": "Bearer dob_NotAToken0123456789"}
    for _ in range(2):
        resp = httpx.post(f"{api}/tokens", json={"user": "mallory", "scopes": ["admin"]}, headers=bad)
        assert resp.status_code == 401
    assert refuse(lambda: hub.client(carol["token"]).remove_tag("dest")) == 401  # revoked
    as_alice = hub.client(alice["token"])
    assert refuse(lambda: as_alice.add_tag("mine")) == 403  # scope
    assert refuse(lambda: as_alice.cancel_build("orch-audit-r_1.0")) == 403  # admin's build: refused by the route
    assert refuse(lambda: as_alice.audit()) == 403
    assert refuse(lambda: admin.claim(["amd64"], wait=0)) == 403  # a token of no host

    rows = [r for r in records(hub) if r["outcome"] == "refused"]
    got = {(r["action"], r["status"]): r for r in rows}
    assert sorted(got) == [("audit.read", 403), ("build.cancel", 403), ("tag.create", 401), ("tag.create", 403),
                           ("tag.remove", 401), ("task.claim", 403), ("token.create", 401)]
    for r in rows:
        assert r["client"] == "127.0.0.1" and r["object"] == {"kind": "", "id": None, "name": None}
        assert r["changes"] == {} and r["last_ts"] >= r["ts"]
    no_token = got[("tag.create", 401)]
    assert (no_token["count"], no_token["user"], no_token["token_id"], no_token["reason"]) == \
        (3, None, None, "no API token")
    unknown = got[("token.create", 401)]
    assert (unknown["count"], unknown["token_id"], unknown["reason"]) == (2, None, "unknown API token")
    revoked = got[("tag.remove", 401)]
    assert (revoked["user"], revoked["token_id"]) == ("carol", carol["id"])
    assert revoked["reason"] == f"revoked API token {carol['id']} (carol)"
    scope = got[("tag.create", 403)]
    assert (scope["user"], scope["token_id"], scope["count"]) == ("alice", alice["id"], 1)
    assert "lacks the 'admin' scope" in scope["reason"]
    assert "belongs to admin" in got[("build.cancel", 403)]["reason"]
    assert got[("task.claim", 403)]["user"] == "admin"
    assert "mallory" not in json.dumps(rows)  # the refused request's body is not recorded
    dumped = json.dumps(rows) + raw_audit_table(hub)
    for secret in ("dob_NotAToken0123456789", alice["token"], carol["token"], hub.admin_token):
        assert secret[:10] not in dumped

    # the window: once the record is older than it (60 s here), the next refusal starts a new record
    with hub.hub.db.session() as s:
        s.execute(text("UPDATE audit SET ts = ts - 61 WHERE id = :id"), {"id": no_token["id"]})
    assert httpx.post(f"{api}/tags", json={"name": "x"}).status_code == 401
    fresh = [r for r in records(hub, action="tag.create") if r["status"] == 401]
    assert [r["count"] for r in fresh] == [3, 1]

    # attempts at the same moment, from several connections: one record counts them all
    def attempt() -> None:
        assert httpx.post(f"{api}/targets", json={"name": "x", "build_tag": "a", "dest_tag": "b"}).status_code == 401

    threads = [threading.Thread(target=attempt) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    concurrent = records(hub, action="target.create")
    assert [(r["outcome"], r["count"]) for r in concurrent] == [("done", 1), ("refused", 12)]


def test_a_change_that_rolls_back_leaves_no_record(hub: RunningHub, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    admin = hub.admin
    admin.add_tag("dest")
    admin.add_target("t", "dest", "dest")
    host = admin.add_host("b1", ["amd64"])
    admin.submit("t", make_source(tmp_path, "orch-audit-f", "1.0"))
    before = records(hub)
    # refused by the hub's checks: nothing changes, nothing is recorded
    assert refuse(lambda: admin.add_tag("dest")) == 409
    assert refuse(lambda: admin.remove_tag("dest")) == 409
    assert refuse(lambda: admin.tag_build("dest", "orch-audit-f_1.0")) == 409
    assert refuse(lambda: admin.request("PATCH", "/tags/dest", json={"parents": ["dest"]})) == 400
    assert refuse(lambda: admin.revoke_token(99)) == 404
    assert records(hub) == before

    # a failure after the record was written, inside the change's transaction: both are gone
    real = audit.record

    def record_then_fail(session: Any, who: audit.Actor, *args: Any, **kwargs: Any) -> None:
        real(session, who, *args, **kwargs)
        if kwargs.get("action", who.action) in (AuditAction.TAG_CREATE, AuditAction.TASK_COMPLETE):
            raise RuntimeError("injected failure after the audit record")

    monkeypatch.setattr(audit, "record", record_then_fail)
    assert httpx.post(f"{hub.url}/api/v1/tags", json={"name": "other"},
                      headers={"Authorization": f"Bearer {hub.admin_token}"}).status_code == 500
    assert [t["name"] for t in admin.tags()] == ["dest"]
    fb = FakeBuilder(hub.client(host["token"]), tmp_path / "fb")
    claim = fb.claim()
    assert claim is not None
    with pytest.raises(HubError) as err:
        fb.finish(claim, 0)
    assert err.value.status == 500
    assert admin.task(claim["task_id"])["state"] == "open"
    monkeypatch.undo()
    rows = records(hub)
    assert [r["action"] for r in rows[len(before):]] == ["task.claim", "task.upload", "task.upload"]
    fb.finish(claim, 0)  # the same attempt completes now, recorded once
    assert [r["action"] for r in records(hub)].count("task.complete") == 1


def _via(hub: RunningHub, source: str, headers: dict[str, str]) -> dict[str, Any]:
    """Create a token over a connection from ``source`` with ``headers``; its audit record."""
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(transport=transport, base_url=f"{hub.url}/api/v1") as c:
        resp = c.post("/tokens", json={"user": "via", "scopes": ["build"]},
                      headers={**headers, "Authorization": f"Bearer {hub.admin_token}"})
        assert resp.status_code == 201, resp.text
        token_id = resp.json()["id"]
    return records(hub, obj=f"token:{token_id}")[0]


def test_proxy_headers_only_from_a_trusted_proxy(hub: RunningHub) -> None:
    xff = {"X-Forwarded-For": "198.51.100.1, 203.0.113.9"}
    untrusted = _via(hub, "127.0.0.1", xff)
    assert (untrusted["client"], untrusted["peer"]) == ("127.0.0.1", "127.0.0.1")  # anyone can send the header
    trusted = _via(hub, "127.0.0.2", xff)
    assert (trusted["client"], trusted["peer"]) == ("203.0.113.9", "127.0.0.2")  # what the proxy saw, not .1
    chained = _via(hub, "127.0.0.2", {"X-Forwarded-For": "203.0.113.9, 127.0.0.2"})
    assert chained["client"] == "203.0.113.9"  # the trusted proxy's own hop is skipped
    other = _via(hub, "127.0.0.2", {"Forwarded": "for=192.0.2.1"})
    assert other["client"] == "127.0.0.2"  # this hub reads X-Forwarded-For only (--forwarded-header)
    none = _via(hub, "127.0.0.2", {})
    assert none["client"] == "127.0.0.2"

    # refusals are counted per client: two clients behind the proxy get a record each
    for client in ("203.0.113.1", "203.0.113.2", "203.0.113.1"):
        with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2")) as c:
            assert c.post(f"{hub.url}/api/v1/tags", json={"name": "x"},
                          headers={"X-Forwarded-For": client}).status_code == 401
    refused = records(hub, action="tag.create")
    assert sorted((r["client"], r["count"]) for r in refused) == [("203.0.113.1", 2), ("203.0.113.2", 1)]


def test_filters_and_pages(hub: RunningHub) -> None:
    admin = hub.admin
    bob = hub.client(admin.create_token("bob", ["admin"])["token"])
    for name in ("t1", "t2", "t3"):
        admin.add_tag(name)
        time.sleep(0.01)
    bob.add_tag("t4")
    bob.add_host("h1", ["amd64"])
    everything = admin.audit()
    assert everything[0].object.name == "h1" and everything[0]["user"] == "bob"  # typed answers, keys too
    assert [r["action"] for r in everything] == ["host.create", "tag.create", "tag.create", "tag.create",
                                                 "tag.create", "token.create"]  # newest first
    assert [r["object"]["name"] for r in admin.audit(user="bob")] == ["h1", "t4"]
    assert [r["object"]["name"] for r in admin.audit(action="tag.create", user="admin")] == ["t3", "t2", "t1"]
    assert [r["object"]["name"] for r in admin.audit(obj="tag:t2")] == ["t2"]
    t2 = admin.tag("t2")
    assert [r["object"]["name"] for r in admin.audit(obj=f"tag:{t2['id']}")] == ["t2"]
    assert len(admin.audit(obj="tag")) == 4 and admin.audit(obj="tag:nope") == []
    # time: ISO 8601 (UTC without a zone) or seconds
    t2_record = admin.audit(obj="tag:t2")[0]
    since = [r["object"]["name"] for r in admin.audit(since=t2_record["time"], action="tag.create")]
    assert since == ["t4", "t3", "t2"]
    assert [r["object"]["name"] for r in admin.audit(since=t2_record["time"].removesuffix("Z"),
                                                      action="tag.create")] == since
    assert [r["object"]["name"] for r in admin.audit(until=t2_record["ts"], action="tag.create")] == ["t1"]
    assert admin.audit(since="2999-01-01T00:00:00+02:00") == []
    # pages: newest first, `before` the last ID of a page
    page1 = admin.audit(limit=4)
    page2 = admin.audit(limit=4, before=page1[-1]["id"])
    assert [r["id"] for r in page1 + page2] == [r["id"] for r in everything]
    # bad filters are refused with a message
    for params, words in (({"since": "yesterday"}, "ISO 8601"), ({"until": "inf"}, "not a time"),
                          ({"action": "tag.destroy"}, "unknown"), ({"limit": 0}, "limit")):
        with pytest.raises(HubError) as err:
            admin.get("/audit", **params)
        assert err.value.status in (400, 422) and words in err.value.detail


def test_cli_audit(hub: RunningHub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                   capsys: pytest.CaptureFixture[str]) -> None:
    admin = hub.admin
    admin.add_tag("base")
    carol = admin.create_token("carol", ["tag"])
    admin.add_host("b1", ["amd64"])
    admin.edit_host("b1", enabled=False)
    monkeypatch.setenv("COLUMNS", "250")  # the table's cells unfolded, for the assertions below
    monkeypatch.setenv("DEB_ORCHESTRATOR_HUB", hub.url)
    monkeypatch.setenv("DEB_ORCHESTRATOR_TOKEN", hub.admin_token)
    monkeypatch.setenv("DEB_ORCHESTRATOR_CONFIG", str(tmp_path / "none.toml"))

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    code, out, _ = run("audit")
    assert code == 0
    for words in ("host.edit", "host b1", "enabled: true → false", "tag.create", "tag base", "token carol",
                  "127.0.0.1", "admin", "done"):
        assert words in out, words
    assert carol["token"][:10] not in out
    code, out, _ = run("audit", "--json", "--action", "host.edit")
    assert code == 0
    assert [(r["action"], r["changes"]) for r in json.loads(out)] == [("host.edit", {"enabled": [True, False]})]
    code, out, _ = run("audit", "--json", "--since", "1h", "--user", "admin", "--object", "tag:base")
    assert code == 0 and [r["object"]["name"] for r in json.loads(out)] == ["base"]
    code, out, _ = run("audit", "--json", "--since", "2999-01-01T00:00")
    assert code == 0 and json.loads(out) == []
    code, out, _ = run("audit", "--json", "--until", "2000-01-01T00:00Z")
    assert code == 0 and json.loads(out) == []
    code, _, err = run("audit", "--since", "yesterday")
    assert code == 2 and "ISO 8601" in err
    # a token without the admin scope: refused, and the refusal shows in the table
    monkeypatch.setenv("DEB_ORCHESTRATOR_TOKEN", carol["token"])
    code, _, err = run("audit")
    assert code == 1 and "403" in err and "'admin' scope" in err
    monkeypatch.setenv("DEB_ORCHESTRATOR_TOKEN", hub.admin_token)
    code, out, _ = run("audit", "--action", "audit.read")
    assert code == 0 and "refused 403" in out and "carol" in out


@pytest.mark.integration
def test_hub_process_trusts_its_proxy_option(tmp_path: Path) -> None:
    """``hub --trusted-proxy ADDR --forwarded-header forwarded`` as a real process, read with the CLI."""
    hub = HubProcess(tmp_path / "data", "--trusted-proxy", "127.0.0.2/32", "--forwarded-header", "forwarded")
    try:
        with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2")) as c:
            headers = {"Authorization": f"Bearer {hub.token}", "X-Forwarded-For": "198.51.100.7",
                       "Forwarded": 'for=192.0.2.60;proto=https, for="[2001:db8:cafe::17]:4711"'}
            assert c.post(f"{hub.url}/api/v1/tags", json={"name": "proxied"}, headers=headers).status_code == 201
        # from 127.0.0.1, not a trusted proxy here (uvicorn's own proxy handling would trust it: it is off)
        assert httpx.post(f"{hub.url}/api/v1/tags", json={"name": "direct"}, headers=headers).status_code == 201
        out = json.loads(hub.cli("audit", "--json").stdout)
        assert [(r["object"]["name"], r["client"], r["peer"]) for r in out] == [
            ("direct", "127.0.0.1", "127.0.0.1"), ("proxied", "2001:db8:cafe::17", "127.0.0.2")]
    finally:
        hub.stop()
    assert main(["hub", "--data", str(tmp_path / "other"), "--trusted-proxy", "proxy.example.org"]) == 2



def test_gc_keeps_audit_records_for_their_own_retention(hub: RunningHub) -> None:
    """Audit records outlive events (365 days by default); gc drops older ones, then records itself."""
    admin = hub.admin
    admin.add_tag("aged")
    admin.add_tag("fresh")
    with hub.hub.db.engine.begin() as c:  # the first record is two years old
        c.execute(text("UPDATE audit SET ts = ts - :age WHERE object_name = 'aged'"), {"age": 2 * 365 * 86400})
    before = {r["object"]["name"] for r in records(hub, action="tag.create")}
    assert before == {"aged", "fresh"}
    dry = admin.gc(dry_run=True)
    assert dry.rows["audit"] == 1 and dry.retention.audit_days == 365
    assert {r["object"]["name"] for r in records(hub, action="tag.create")} == before  # a dry run changes nothing
    report = admin.gc()
    assert report.rows["audit"] == 1
    assert {r["object"]["name"] for r in records(hub, action="tag.create")} == {"fresh"}
    assert [r["changes"]["rows_deleted"][1]["audit"] for r in records(hub, action="hub.gc")] == [1]
    assert admin.gc(keep_forever=["audit_days"], retention={"event_days": 0}).rows.get("audit") is None
