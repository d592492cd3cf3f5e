"""Signing in to the web pages: an API token exchanged for a session cookie, and the checks every form passes.

- The cookie (``dob_session``) holds a random secret; the database keeps its SHA-256 (``web_sessions``), the
  token it was made from and the session's CSRF secret. It is HttpOnly, SameSite=Lax, Secure when the page was
  served over https, and lives ``SESSION_SECONDS`` at most.
- Every request that needs the session reads it from the database joined with its token: a revoked token ends
  its sessions at once in every hub worker, and signing out deletes the row.
- Every form that changes something carries the session's CSRF secret in a hidden field (compared in constant
  time) and must come from the hub's own origin (``Origin``, else ``Referer``, must name the host the request
  was sent to). The sign-in form, before any session exists, carries a secret that must equal a cookie of its
  own (``dob_signin``, double submit) and passes the same origin check.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi import Request, Response
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from deb_orchestrator.hub import clientaddr
from deb_orchestrator.hub.auth import Principal, hash_token
from deb_orchestrator.hub.models import Token, User, WebSession

COOKIE = "dob_session"
SIGNIN_COOKIE = "dob_signin"
SESSION_SECONDS = 12 * 3600.0
SIGNIN_SECONDS = 3600.0


@dataclass(frozen=True)
class SignedIn:
    """A live session: who acts (its token's principal), the session's row ID and its CSRF secret."""

    principal: Principal
    session_id: int
    csrf: str


def secure(request: Request) -> bool:
    """Whether the page was served over https: directly, or by a ``hub --trusted-proxy`` peer that says so in
    ``X-Forwarded-Proto`` (the header counts from no one else)."""
    if request.url.scheme == "https":
        return True
    proto = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    if proto != "https" or request.client is None:
        return False
    settings = request.app.state.hub.settings
    peer = clientaddr.parse_address(request.client.host)
    return peer is not None and any(peer in net for net in clientaddr.networks(tuple(settings.trusted_proxies)))


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: float) -> None:
    response.set_cookie(name, value, max_age=int(max_age), path="/", httponly=True, samesite="lax",
                        secure=secure(request))


def create(s: Session, token_id: int) -> tuple[str, WebSession]:
    """A new session of a token (expired sessions of every token are dropped on the way); returns the cookie's
    secret, which is stored nowhere."""
    now = time.time()
    s.execute(delete(WebSession).where(WebSession.expires < now))
    secret = secrets.token_urlsafe(32)
    row = WebSession(secret_hash=hash_token(secret), token_id=token_id, csrf=secrets.token_urlsafe(32),
                     created=now, expires=now + SESSION_SECONDS)
    s.add(row)
    s.flush()
    return secret, row


def lookup(s: Session, secret: str) -> SignedIn | None:
    """The session of a cookie: unexpired, its token not revoked (one query)."""
    if not secret or len(secret) > 100:
        return None
    row = s.execute(
        select(WebSession.id, WebSession.csrf, Token.id.label("token_id"), Token.user_id, Token.scopes,
               Token.host_id, User.name)
        .join(Token, Token.id == WebSession.token_id).join(User, User.id == Token.user_id)
        .where(WebSession.secret_hash == hash_token(secret), WebSession.expires > time.time(),
               Token.revoked.is_(False))
    ).first()
    if row is None:
        return None
    principal = Principal(row.name, row.user_id, frozenset(row.scopes.split(",")), row.host_id, row.token_id)
    return SignedIn(principal, row.id, row.csrf)


def end(s: Session, session_id: int) -> None:
    s.execute(delete(WebSession).where(WebSession.id == session_id))


def same_origin(request: Request) -> bool:
    """The request names the hub's own origin: its ``Origin`` header, or without one its ``Referer``, has the
    host (and port) the request was sent to. A request with neither header passes (not a browser's form post:
    browsers send Origin with every POST); the CSRF secret still has to match."""
    host = request.headers.get("host", "")
    for header in ("origin", "referer"):
        value = request.headers.get(header)
        if value is None:
            continue
        if value == "null":
            return False
        parts = urlsplit(value)
        return bool(host) and parts.netloc == host and parts.scheme in ("http", "https")
    return True


def same_secret(given: object, expected: str) -> bool:
    return isinstance(given, str) and bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


def local_path(target: str | None, default: str = "/") -> str:
    """Where to go after signing in or out: a path on this hub only (never ``//host`` or a URL)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target
