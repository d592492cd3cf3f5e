"""Signing in and out, and the actions of the web pages (cancel, resubmit, tag, untag, enable or disable a
builder): form posts guarded by a session and its CSRF secret (web/session.py), acting through the same
functions as the API (hub/actions.py) with the same scope checks, recorded in the audit log with ``via: web``.
Refusals (not signed in, a failed CSRF or origin check, a missing scope, another user's build) answer an HTML
page with 401 or 403 and are recorded as refused attempts."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from deb_orchestrator.hub import actions, audit, auth
from deb_orchestrator.hub.errors import HubError
from deb_orchestrator.hub.service import Hub
from deb_orchestrator.hub.web import session as websession
from deb_orchestrator.hub.web.render import page
from deb_orchestrator.states import AuditAction

router = APIRouter(include_in_schema=False)
SCRIPT = Path(__file__).parent / "static" / "webui.js"


MAX_FORM_BYTES = 64 << 10  # the pages' forms are a few fields


async def _form(request: Request) -> Any:
    """The posted form, refused (413) past MAX_FORM_BYTES before it is read."""
    declared = request.headers.get("content-length", "")
    if not declared.isdigit() or int(declared) > MAX_FORM_BYTES:
        raise WebRefused(413 if declared.isdigit() else 411, f"a form of at most {MAX_FORM_BYTES} bytes, with its "
                         "Content-Length, is expected here")
    return await request.form()


class WebRefused(Exception):
    """A form post refused: answered as an HTML page (app.py registers :func:`refused_page`)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


async def refused_page(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, WebRefused)
    title = {401: "Sign in first", 403: "Refused"}.get(exc.status, "Not accepted")
    return await run_in_threadpool(page, request, "error.html", title, exc.status, message=exc.message)


async def _refuse(request: Request, action: AuditAction, status: int, reason: str,
                  who: websession.SignedIn | None = None) -> WebRefused:
    hub: Hub = request.app.state.hub
    client, peer = audit.where(request, hub.settings)
    actor = audit.Actor(action, client, peer, who.principal.token_id if who else None,
                        who.principal.user if who else None, via="web")
    await run_in_threadpool(audit.refused, hub.db, hub.settings.audit_refused_window, actor, status, reason)
    return WebRefused(status, reason)


def _signed_in(request: Request) -> websession.SignedIn | None:
    secret = request.cookies.get(websession.COOKIE, "")
    if not secret:
        return None
    with request.app.state.hub.db.session() as s:
        return websession.lookup(s, secret)


def web_require(scope: str | None, action: AuditAction) -> Callable[..., Any]:
    """A FastAPI dependency for a form post: a live session (its token not revoked), the post from the hub's
    own origin with the session's CSRF secret, and the token's ``scope`` (None: any). Puts the web actor on
    the request for the route's audit record."""

    async def dep(request: Request) -> websession.SignedIn:
        who = await run_in_threadpool(_signed_in, request)
        if who is None:
            raise await _refuse(request, action, 401, "not signed in (or the session ended: its token was "
                                "revoked, it expired, or it signed out); sign in again")
        form = await _form(request)
        if not websession.same_origin(request):
            raise await _refuse(request, action, 403, "CSRF check failed: the form was not posted from this "
                                "hub's pages (Origin/Referer names another site)", who)
        if not websession.same_secret(form.get("csrf"), who.csrf):
            raise await _refuse(request, action, 403, "CSRF check failed: the form's token is missing or wrong "
                                "(reload the page and try again)", who)
        if scope is not None and not who.principal.has(scope):
            raise await _refuse(request, action, 403, f"this session's token ({who.principal.user}, scopes "
                                f"{','.join(sorted(who.principal.scopes))}) lacks the '{scope}' scope", who)
        client, peer = audit.where(request, request.app.state.hub.settings)
        request.state.audit = audit.Actor(action, client, peer, who.principal.token_id, who.principal.user,
                                          via="web")
        return who

    dep.audit_action = action  # type: ignore[attr-defined]  # tests check that every change declares one
    return dep


async def _act(request: Request, who: websession.SignedIn, then: str,
               change: Callable[[Hub, auth.Principal, audit.Actor], Any]) -> Response:
    """Run an action of hub/actions.py; its refusals (another user's build: 403) are recorded and answered
    as a page, like its other errors (404, 409); success goes back to ``then`` (post, redirect, get)."""
    hub: Hub = request.app.state.hub
    actor = audit.actor(request)
    try:
        await run_in_threadpool(change, hub, who.principal, actor)
    except HubError as exc:
        if exc.status in (401, 403):
            raise await _refuse(request, actor.action, exc.status, exc.message, who) from None
        return await run_in_threadpool(page, request, "error.html", "Not done", exc.status, message=exc.message)
    return RedirectResponse(then, status_code=303)


# ---------------------------------------------------------------------------------------------- signing in
@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> Response:
    nonce = secrets.token_urlsafe(24)
    response = page(request, "login.html", "Sign in", nonce=nonce,
                    next=websession.local_path(request.query_params.get("next")))
    websession.set_cookie(request, response, websession.SIGNIN_COOKIE, nonce, websession.SIGNIN_SECONDS)
    return response


async def _signin_guard(request: Request) -> None:
    """The sign-in form came from this hub's sign-in page: same origin, and its secret equals the cookie that
    page set (login CSRF: nobody signs a victim in to the attacker's account)."""
    form = await _form(request)
    client, peer = audit.where(request, request.app.state.hub.settings)
    request.state.audit = audit.Actor(AuditAction.SESSION_CREATE, client, peer, via="web")
    if not websession.same_origin(request) or not websession.same_secret(
            form.get("csrf"), request.cookies.get(websession.SIGNIN_COOKIE, "")):
        raise await _refuse(request, AuditAction.SESSION_CREATE, 403, "CSRF check failed: sign in from this "
                            "hub's sign-in page (reload it and try again)")


_signin_guard.audit_action = AuditAction.SESSION_CREATE  # type: ignore[attr-defined]


@router.post("/login", dependencies=[Depends(_signin_guard)])
async def login(request: Request) -> Response:
    form = await request.form()
    token = str(form.get("token") or "").strip()
    then = websession.local_path(str(form.get("next") or ""), "/dashboard")
    hub: Hub = request.app.state.hub

    def sign_in() -> tuple[str, int] | str:
        with hub.db.session() as s:
            who = auth.lookup(s, token) if token.startswith(auth.TOKEN_PREFIX) and len(token) < 200 else None
            if who is None:
                return "unknown or revoked API token"
            if who.host_id is not None:
                return "a builder host's token cannot sign in to the web pages"
            secret, row = websession.create(s, who.token_id)
            actor = audit.Actor(AuditAction.SESSION_CREATE, *audit.where(request, hub.settings), who.token_id,
                                who.user, via="web")
            audit.record(s, actor, "session", row.id, None, audit.created(token_id=who.token_id,
                                                                          expires=audit.iso(row.expires)))
            return secret, row.id

    got = await run_in_threadpool(sign_in)
    if isinstance(got, str):
        raise await _refuse(request, AuditAction.SESSION_CREATE, 401, got)
    response = RedirectResponse(then, status_code=303)
    websession.set_cookie(request, response, websession.COOKIE, got[0], websession.SESSION_SECONDS)
    response.delete_cookie(websession.SIGNIN_COOKIE, path="/")
    return response


@router.post("/logout")
def logout(request: Request, who: websession.SignedIn = Depends(web_require(None, AuditAction.SESSION_END))) \
        -> Response:
    with request.app.state.hub.db.session() as s:
        websession.end(s, who.session_id)
        audit.record(s, audit.actor(request), "session", who.session_id, None, audit.removed(token_id=who.principal
                                                                                              .token_id))
    response = RedirectResponse("/dashboard", status_code=303)
    response.delete_cookie(websession.COOKIE, path="/")
    return response


# ---------------------------------------------------------------------------------------------- actions
@router.post("/tasks/{task_id}/cancel")
async def cancel_task(task_id: int, request: Request,
                      who: websession.SignedIn = Depends(web_require("build", AuditAction.TASK_CANCEL))) -> Response:
    return await _act(request, who, f"/tasks/{task_id}",
                      lambda hub, p, actor: actions.cancel_task(hub, p, actor, task_id))


@router.post("/builds/{ref}/cancel")
async def cancel_build(ref: str, request: Request, who: websession.SignedIn = Depends(
        web_require("build", AuditAction.BUILD_CANCEL))) -> Response:
    return await _act(request, who, f"/builds/{ref}", lambda hub, p, actor: actions.cancel_build(hub, p, actor, ref))


@router.post("/builds/{ref}/resubmit")
async def resubmit_build(ref: str, request: Request, who: websession.SignedIn = Depends(
        web_require("build", AuditAction.BUILD_RESUBMIT))) -> Response:
    return await _act(request, who, f"/builds/{ref}",
                      lambda hub, p, actor: actions.resubmit_build(hub, p, actor, ref))


@router.post("/builds/{ref}/tag")
async def tag_build(ref: str, request: Request, who: websession.SignedIn = Depends(
        web_require("tag", AuditAction.BUILD_TAG))) -> Response:
    tag = str((await request.form()).get("tag") or "")
    return await _act(request, who, f"/builds/{ref}",
                      lambda hub, p, actor: actions.tag_build(hub, p, actor, tag, ref))


@router.post("/builds/{ref}/untag")
async def untag_build(ref: str, request: Request, who: websession.SignedIn = Depends(
        web_require("tag", AuditAction.BUILD_UNTAG))) -> Response:
    tag = str((await request.form()).get("tag") or "")
    return await _act(request, who, f"/builds/{ref}",
                      lambda hub, p, actor: actions.untag_build(hub, p, actor, tag, ref))


@router.post("/hosts/{name}/enabled")
async def enable_host(name: str, request: Request, who: websession.SignedIn = Depends(
        web_require("admin", AuditAction.HOST_EDIT))) -> Response:
    enabled = (await request.form()).get("enabled") == "yes"
    return await _act(request, who, f"/hosts/{name}",
                      lambda hub, p, actor: actions.edit_host(hub, p, actor, name, enabled=enabled))


@router.get("/static/webui.js")
def script() -> FileResponse:
    return FileResponse(SCRIPT, media_type="text/javascript; charset=utf-8",
                        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "max-age=300"})
