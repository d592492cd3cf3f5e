"""The web UI's sessions and actions over real HTTP (the browser scenario is test_orch_webui_browser.py): signing
in with a token (cookie flags, the sign-in form's own CSRF check), actions through the same service layer and
scope checks as the API, recorded in the audit log with ``via: web``; forms posted without or with a wrong CSRF
token or from another origin refused and recorded; a session ends with its token's revocation and on signing out;
and every page costs the same number of SQL statements with 10 times more rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from orch_helpers import make_source
from orch_hub import RunningHub
from orch_web import Browser, bench_pages, counted_queries

from deb_orchestrator.states import AuditAction

HUB_SETTINGS = {"trusted_proxies": ["127.0.0.1/32"]}  # its X-Forwarded-Proto counts: the Secure cookie

def audit_rows(hub: RunningHub, **filters: Any) -> list[dict[str, Any]]:
    return [r.to_json() for r in reversed(hub.admin.audit(limit=1000, **filters))]


@pytest.fixture
def browser(hub: RunningHub) -> Any:
    b = Browser(hub.url)
    yield b
    b.close()


def test_sign_in_actions_csrf_and_revocation(hub: RunningHub, browser: Browser, tmp_path: Path) -> None:
    admin = hub.admin
    admin.add_tag("dest")
    admin.add_target("t", "dest", "dest")
    alice = admin.create_token("alice", ["build"])
    as_alice = hub.client(alice["token"])
    as_alice.submit("t", make_source(tmp_path, "orch-webui", "1.0"))
    builder = admin.add_host("b1", ["amd64"])

    # read-only without signing in: no forms, a sign-in link
    page = browser.get("/builds/1").text
    assert 'id="sign-in"' in page and 'action="/builds/1/cancel"' not in page
    assert browser.post("/builds/1/cancel", csrf="x").status_code == 401

    # the sign-in form checks its own secret (the cookie its page set) and the origin
    form = browser.get("/login")
    cookie = form.headers["set-cookie"]
    assert "dob_signin=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    assert browser.post("/login", {"token": alice["token"]}, csrf="wrong").status_code == 403
    assert browser.post("/login", {"token": alice["token"]}).status_code == 403
    assert browser.post("/login", {"token": "dob_NotAToken"}, csrf=browser.http.cookies["dob_signin"]).status_code \
        == 401
    assert browser.post("/login", {"token": builder["token"]}, csrf=browser.http.cookies["dob_signin"]) \
        .status_code == 401  # a builder host's token
    big = browser.http.post("/login", content=b"token=" + b"x" * 70_000,
                            headers={"content-type": "application/x-www-form-urlencoded"})
    assert big.status_code == 413  # forms are small: refused before the body is read
    signed = browser.sign_in(alice["token"])
    assert signed.status_code == 303 and signed.headers["location"] == "/dashboard"
    cookie = signed.headers["set-cookie"]
    assert "dob_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie and "Max-Age=43200" in cookie
    # through a TLS proxy (a trusted peer saying https) the cookies are Secure
    assert "Secure" in browser.http.get("/login", headers={"X-Forwarded-Proto": "https"}).headers["set-cookie"]
    page = browser.get("/builds/1").text
    assert 'signed in as <b id="signed-in-user">alice</b>' in page and 'action="/builds/1/cancel"' in page
    csrf = browser.csrf

    # forms without the CSRF secret, with a wrong one, or from another origin: refused, nothing changes
    assert browser.post("/builds/1/cancel").status_code == 403
    assert browser.post("/builds/1/cancel", csrf="not-the-secret").status_code == 403
    refused = browser.post("/builds/1/cancel", csrf=csrf, origin="https://evil.example")
    assert refused.status_code == 403 and "CSRF check failed" in refused.text
    assert refused.headers["content-type"].startswith("text/html")
    assert browser.post("/builds/1/cancel", csrf=csrf, origin="null").status_code == 403
    assert admin.build("orch-webui_1.0")["state"] == "building"

    # actions through the API's service layer and scope checks
    done = browser.post("/builds/1/cancel", csrf=csrf)
    assert done.status_code == 303 and done.headers["location"] == "/builds/1"
    assert admin.build("orch-webui_1.0")["state"] == "canceled"
    assert browser.post("/builds/1/resubmit", csrf=csrf).status_code == 303
    b = admin.build("orch-webui_1.0")
    assert b["state"] == "building"
    task = b["task_id"]
    assert browser.post(f"/tasks/{task}/cancel", csrf=csrf).status_code == 303
    assert admin.task(task)["state"] == "canceled"
    assert browser.post("/builds/1/tag", {"tag": "dest"}, csrf=csrf).status_code == 403  # scope tag
    assert browser.post("/hosts/b1/enabled", {"enabled": "no"}, csrf=csrf).status_code == 403  # scope admin
    admin.submit("t", make_source(tmp_path / "admin", "orch-webui-admin", "1.0"))
    theirs = browser.post("/builds/orch-webui-admin_1.0/cancel", csrf=csrf)
    assert theirs.status_code == 403 and "belongs to admin" in theirs.text  # the API's ownership check
    assert browser.post("/builds/nope_1.0/cancel", csrf=csrf).status_code == 404

    # an admin's session: builders and tags
    other = Browser(hub.url)
    try:
        assert other.sign_in(hub.admin_token).status_code == 303
        admin_csrf = other.csrf
        assert other.post("/hosts/b1/enabled", {"enabled": "no"}, csrf=admin_csrf).status_code == 303
        assert admin.get("/hosts/b1")["enabled"] is False
        assert other.post("/hosts/b1/enabled", {"enabled": "yes"}, csrf=admin_csrf).status_code == 303
        assert admin.get("/hosts/b1")["enabled"] is True
        assert other.post("/builds/orch-webui-admin_1.0/tag", {"tag": "nope"}, csrf=admin_csrf).status_code == 404
        assert other.post("/logout", csrf=admin_csrf).status_code == 303
        assert 'id="sign-in"' in other.get("/dashboard").text
        assert other.post("/hosts/b1/enabled", {"enabled": "no"}, csrf=admin_csrf).status_code == 401
    finally:
        other.close()

    # revoking the token ends its sessions at once
    admin.revoke_token(alice["id"])
    assert browser.post("/builds/1/resubmit", csrf=csrf).status_code == 401
    assert 'id="sign-in"' in browser.get("/dashboard").text

    web = [r for r in audit_rows(hub) if r["via"] == "web"]
    done_web = [(r["action"], r["user"], r["object"]["name"]) for r in web if r["outcome"] == "done"]
    assert done_web == [
        (AuditAction.SESSION_CREATE, "alice", None), (AuditAction.BUILD_CANCEL, "alice", "orch-webui_1.0"),
        (AuditAction.BUILD_RESUBMIT, "alice", "orch-webui_1.0"), (AuditAction.TASK_CANCEL, "alice", None),
        (AuditAction.SESSION_CREATE, "admin", None), (AuditAction.HOST_EDIT, "admin", "b1"),
        (AuditAction.HOST_EDIT, "admin", "b1"), (AuditAction.SESSION_END, "admin", None)]
    canceled = next(r for r in web if r["outcome"] == "done" and r["action"] == AuditAction.BUILD_CANCEL)
    assert canceled["changes"]["state"] == ["building", "canceled"] and canceled["token_id"] == alice["id"]
    refusals = {(r["action"], r["status"], r["user"]): r for r in web if r["outcome"] == "refused"}
    assert refusals[(AuditAction.BUILD_CANCEL, 401, None)]["reason"].startswith("not signed in")
    csrf_refusal = refusals[(AuditAction.BUILD_CANCEL, 403, "alice")]
    assert "CSRF check failed" in csrf_refusal["reason"] and csrf_refusal["count"] >= 4  # one record per window
    assert "CSRF check failed" in refusals[(AuditAction.SESSION_CREATE, 403, None)]["reason"]
    assert (AuditAction.SESSION_CREATE, 401, None) in refusals
    assert "lacks the 'tag' scope" in refusals[(AuditAction.BUILD_TAG, 403, "alice")]["reason"]
    assert (AuditAction.HOST_EDIT, 403, "alice") in refusals
    assert (AuditAction.BUILD_RESUBMIT, 401, None) in refusals  # after the revocation
    assert all(r["via"] == "api" for r in audit_rows(hub) if r not in web)
    assert not any(alice["token"] in str(r) or hub.admin_token in str(r) for r in audit_rows(hub))


PAGES = ["/dashboard", "/tasks", "/tasks?offset=50", "/tasks?state=failed", "/tasks?q=dpkg", "/tasks?host=web-h0",
         "/builds", "/builds?q=web-1", "/builds?state=complete", "/tags", "/tags/web-dest", "/tags/web-dest?q=web",
         "/targets", "/hosts", "/hosts/web-h0", "/builds/3", "/tasks/5", "/tasks/6"]


def test_queries_per_page_do_not_grow_with_rows(hub: RunningHub, browser: Browser) -> None:
    """Each page runs the same SQL statements with 60 tasks as with 660 (and a signed-in viewer costs one
    more: the session's row with its token's): no query per row."""
    fill = bench_pages().fill
    fill(hub.hub.db, 30, prefix="web")

    def costs() -> dict[str, int]:
        out = {}
        for path in PAGES:
            with counted_queries(hub.hub.db.engine) as seen:
                r = browser.get(path)
            assert r.status_code == 200, (path, r.text[:300])
            out[path] = len(seen)
        return out

    small = costs()
    fill(hub.hub.db, 300, prefix="web")
    large = costs()

    # what the pages show of those rows: the dashboard's parts, one page of a list at a time, searches
    text = browser.get("/dashboard").text
    queue = text.split('id="queue"')[1].split("</table>")[0]
    assert all(arch in queue for arch in ("amd64", "arm64", "riscv64", "ppc64el")) and "/tasks?state=failed" in queue
    assert text.count("web-h") >= 8 and "/4</td>" in text  # builders with running/capacity
    assert 'id="running"' in text and 'id="failed-builds"' in text and 'id="failed-tasks"' in text
    assert 'href="/tasks?state=open"' in text  # more running tasks than shown
    tasks = browser.get("/tasks").text
    assert tasks.count('<tr><td><a href="/tasks/') == 50 and 'rel="next"' in tasks and 'rel="prev"' not in tasks
    last = browser.get("/tasks?offset=650").text
    assert last.count('<tr><td><a href="/tasks/') == 10 and 'rel="next"' not in last and 'rel="prev"' in last
    failed = browser.get("/tasks?state=failed&size=500").text
    assert failed.count("dpkg-buildpackage failed") == 60 and "<td>closed</td>" not in failed
    found = browser.get("/builds?q=web-77_").text  # a source name's part (LIKE's _ is escaped)
    assert found.count('<tr><td><a href="/builds/') == 0
    found = browser.get("/builds?q=web-77").text
    assert found.count('<tr><td><a href="/builds/') == 1 and "web-77_1.0" in found
    tag = browser.get("/tags/web-dest?q=web-1").text
    assert "web-1_1.0" in tag and "web-2_1.0" not in tag
    assert large == small
    assert max(small.values()) <= 16, small
    assert browser.sign_in(hub.admin_token).status_code == 303
    assert costs() == {path: n + 1 for path, n in small.items()}
