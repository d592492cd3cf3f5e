"""API tokens: create (the secret is shown once), list, revoke; ``whoami``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy import select

from deb_orchestrator.hub import audit, auth, events
from deb_orchestrator.hub.api.common import hub_of
from deb_orchestrator.hub.auth import Principal, authenticated, require
from deb_orchestrator.hub.errors import HubError, NotFound
from deb_orchestrator.hub.models import Token
from deb_orchestrator.states import AuditAction
from deb_orchestrator.wire import TokenCreated, TokenIn, TokenOut, TokenRevoked, WhoAmI

router = APIRouter(tags=["tokens"])


@router.get("/whoami", summary="The user and scopes of the calling token", response_model=WhoAmI)
def whoami(who: Principal = Depends(authenticated(AuditAction.WHOAMI))) -> dict[str, Any]:
    return {"user": who.user, "scopes": sorted(who.scopes), "host_id": who.host_id, "token_id": who.token_id}


@router.post("/tokens", status_code=201, summary="Create a token for a user (scope admin); shown once",
             response_model=TokenCreated)
def create_token(body: TokenIn, request: Request,
                 who: Principal = Depends(require("admin", AuditAction.TOKEN_CREATE))) -> dict[str, Any]:
    try:
        scopes = auth.parse_scopes(body.scopes)
    except ValueError as exc:
        raise HubError(str(exc)) from None
    if "builder" in scopes:
        raise HubError("builder tokens belong to a host: create them with add-host")
    with hub_of(request).db.session() as s:
        secret, tok = auth.issue_token(s, body.user, scopes, name=body.name)
        events.record(s, "token.created", "token", tok.id, who.user, user=body.user, scopes=scopes)
        audit.record(s, audit.actor(request), "token", tok.id, body.user,  # never the secret, nor its prefix
                     audit.created(user=body.user, scopes=scopes, name=body.name))
        return {"id": tok.id, "user": body.user, "scopes": scopes, "token": secret}


@router.get("/tokens", summary="List tokens (without secrets; scope admin)", response_model=list[TokenOut])
def list_tokens(request: Request,
                who: Principal = Depends(require("admin", AuditAction.TOKEN_LIST))) -> list[dict[str, Any]]:
    with hub_of(request).db.session() as s:
        return [{"id": t.id, "user": t.user.name, "name": t.name, "prefix": t.prefix, "scopes": t.scopes.split(","),
                 "revoked": t.revoked, "created": t.created} for t in s.scalars(select(Token).order_by(Token.id))]


@router.delete("/tokens/{token_id}", summary="Revoke a token (scope admin)", response_model=TokenRevoked)
def revoke_token(token_id: int, request: Request,
                 who: Principal = Depends(require("admin", AuditAction.TOKEN_REVOKE))) -> dict[str, Any]:
    with hub_of(request).db.session() as s:
        tok = s.get(Token, token_id)
        if tok is None:
            raise NotFound(f"no token {token_id}")
        audit.record(s, audit.actor(request), "token", tok.id, tok.user.name,
                     audit.changed({"revoked": tok.revoked}, {"revoked": True}))
        tok.revoked = True
        events.record(s, "token.revoked", "token", tok.id, who.user)
    hub_of(request).tokens.revoked()  # committed: every hub process drops its cached principals
    return {"id": token_id, "revoked": True}
