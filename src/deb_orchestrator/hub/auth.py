"""API tokens: random secrets shown once, stored as SHA-256; scopes admin, build, tag, builder.

``admin`` may do everything. ``build`` submits, cancels and resubmits builds. ``tag`` tags and untags
builds and regenerates repos. ``builder`` claims tasks and reports their results (host tokens).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path

from fastapi import Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.orm import Session

from deb_orchestrator.hub import audit
from deb_orchestrator.hub.models import Token, User
from deb_orchestrator.states import AuditAction

SCOPES = ("admin", "build", "tag", "builder")
TOKEN_PREFIX = "dob_"

bearer = HTTPBearer(auto_error=False, description="An API token: `Authorization: Bearer dob_…`")


@dataclass(frozen=True)
class Principal:
    user: str
    user_id: int
    scopes: frozenset[str]
    host_id: int | None
    token_id: int

    def has(self, scope: str) -> bool:
        return "admin" in self.scopes or scope in self.scopes


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse_scopes(text: str | list[str]) -> list[str]:
    items = text.split(",") if isinstance(text, str) else text
    scopes = sorted({s.strip() for s in items if s.strip()})
    bad = [s for s in scopes if s not in SCOPES]
    if bad or not scopes:
        raise ValueError(f"unknown scope(s) {', '.join(bad) or '(none given)'}; choose from {', '.join(SCOPES)}")
    return scopes


def issue_token(
    session: Session, user_name: str, scopes: list[str], *, name: str = "", host_id: int | None = None
) -> tuple[str, Token]:
    """Create a token (and the user if new); returns the secret, which is not stored anywhere."""
    user = session.scalar(select(User).where(User.name == user_name))
    if user is None:
        user = User(name=user_name)
        session.add(user)
        session.flush()
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    tok = Token(
        user_id=user.id,
        host_id=host_id,
        name=name,
        token_hash=hash_token(secret),
        prefix=secret[:10],
        scopes=",".join(parse_scopes(scopes)),
    )
    session.add(tok)
    session.flush()
    return secret, tok


class TokenCache:
    """Principals of tokens this process has seen, dropped whenever any hub process revokes a token.

    A revoked token must stop working at once in every hub process (``--workers N``), without a database
    query on every request: every revocation replaces the *epoch file* in the hub's data directory (a new
    inode), and each request compares the file's identity (one ``stat``) with the one its cache was filled
    under. The epoch is read before the database is, so an entry filled by a lookup that raced a revocation
    carries the old epoch and is dropped at the next request."""

    MAX_ENTRIES = 10_000

    def __init__(self, epoch_file: Path) -> None:
        self.epoch_file = epoch_file
        self._lock = threading.Lock()
        self._epoch: tuple[int, int] | None = None
        self._entries: dict[str, Principal] = {}

    def epoch(self) -> tuple[int, int]:
        try:
            st = os.stat(self.epoch_file)
        except FileNotFoundError:
            return (0, 0)
        return (st.st_ino, st.st_mtime_ns)

    def get(self, secret: str, epoch: tuple[int, int]) -> Principal | None:
        with self._lock:
            if epoch != self._epoch:
                self._entries.clear()
                self._epoch = epoch
                return None
            return self._entries.get(hash_token(secret))

    def put(self, secret: str, principal: Principal, epoch: tuple[int, int]) -> None:
        with self._lock:
            if epoch != self._epoch:
                return
            if len(self._entries) >= self.MAX_ENTRIES:
                self._entries.clear()
            self._entries[hash_token(secret)] = principal

    def revoked(self) -> None:
        """A token was revoked (after the commit): every process drops its cache at its next request."""
        tmp = self.epoch_file.with_name(f".{self.epoch_file.name}.{os.getpid()}.{threading.get_ident()}")
        tmp.write_text(secrets.token_hex(8) + "\n")
        os.replace(tmp, self.epoch_file)
        with self._lock:
            self._entries.clear()
            self._epoch = None


def lookup(session: Session, secret: str) -> Principal | None:
    """The principal of a token that is not revoked (one query; :class:`TokenCache` spares most of them)."""
    row = session.execute(
        select(Token.id, Token.user_id, Token.scopes, Token.host_id, User.name)
        .join(User, User.id == Token.user_id)
        .where(Token.token_hash == hash_token(secret), Token.revoked.is_(False))
    ).first()
    if row is None:
        return None
    return Principal(row.name, row.user_id, frozenset(row.scopes.split(",")), row.host_id, row.id)


async def _refuse(request: Request, action: AuditAction, status: int, reason: str, *,
                  principal: Principal | None = None, token_hash: str | None = None) -> None:
    """Record a refused attempt in the audit log (rate-limited there; nothing secret)."""
    hub = request.app.state.hub
    client, peer = audit.where(request, hub.settings)
    who = audit.Actor(action, client, peer, principal.token_id if principal else None,
                      principal.user if principal else None)
    await run_in_threadpool(audit.refused, hub.db, hub.settings.audit_refused_window, who, status, reason,
                            token_hash=token_hash)


async def authenticate(request: Request, creds: HTTPAuthorizationCredentials | None,
                       action: AuditAction) -> Principal:
    """The principal of the request's token; 401 (recorded as a refused ``action``) without a valid one."""
    if creds is None or not creds.credentials:
        await _refuse(request, action, 401, "no API token")
        raise HTTPException(401, "missing API token: pass `Authorization: Bearer TOKEN` (CLI: --token-file)",
                            headers={"WWW-Authenticate": "Bearer"})
    hub = request.app.state.hub

    def look() -> Principal | None:
        with hub.db.session() as s:
            return lookup(s, creds.credentials)

    cache: TokenCache = hub.tokens
    epoch = cache.epoch()
    principal = cache.get(creds.credentials, epoch)
    if principal is None:
        principal = await run_in_threadpool(look)
        if principal is not None:
            cache.put(creds.credentials, principal, epoch)
    if principal is None:
        await _refuse(request, action, 401, "unknown API token", token_hash=hash_token(creds.credentials))
        raise HTTPException(401, "invalid or revoked API token", headers={"WWW-Authenticate": "Bearer"})
    return principal


def _acting(request: Request, action: AuditAction, principal: Principal) -> None:
    """The request's audit actor (audit.actor): routes record their changes with it."""
    client, peer = audit.where(request, request.app.state.hub.settings)
    request.state.audit = audit.Actor(action, client, peer, principal.token_id, principal.user)


def authenticated(action: AuditAction):  # type: ignore[no-untyped-def]
    """A FastAPI dependency: any valid token (refusals recorded as ``action``)."""

    async def dep(request: Request, creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> Principal:
        principal = await authenticate(request, creds, action)
        _acting(request, action, principal)
        return principal

    dep.audit_action = action  # type: ignore[attr-defined]  # tests check that every change declares one
    return dep


def require(scope: str, action: AuditAction):  # type: ignore[no-untyped-def]
    """A FastAPI dependency: the caller's token must carry ``scope`` (or admin). ``action`` names what the route
    does in the audit log: its refusals are recorded here, its changes by the route (audit.record)."""

    async def dep(request: Request, creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> Principal:
        principal = await authenticate(request, creds, action)
        if not principal.has(scope):
            message = (f"this token ({principal.user}, scopes {','.join(sorted(principal.scopes))}) "
                       f"lacks the '{scope}' scope")
            await _refuse(request, action, 403, message, principal=principal)
            raise HTTPException(403, message)
        _acting(request, action, principal)
        return principal

    dep.audit_action = action  # type: ignore[attr-defined]  # tests check that every change declares one
    return dep
