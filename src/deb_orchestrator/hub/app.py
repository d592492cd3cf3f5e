"""The FastAPI application: REST API under /api/v1, tag repos under /repos, web pages under /."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from sqlalchemy.exc import DataError, IntegrityError
from starlette.staticfiles import StaticFiles

from deb_orchestrator.hub import audit
from deb_orchestrator.hub.api import audit as audit_api
from deb_orchestrator.hub.api import builds, events, gc, hosts, metrics, repos, tags, targets, tasks, tokens, webhooks
from deb_orchestrator.hub.api.common import SAFE_HEADERS
from deb_orchestrator.hub.config import HubSettings
from deb_orchestrator.hub.db import POOL_SIZE
from deb_orchestrator.hub.errors import HubError, NotFound
from deb_orchestrator.hub.metrics import RequestCounter
from deb_orchestrator.hub.packages import mib
from deb_orchestrator.hub.service import Hub
from deb_orchestrator.hub.web import dashboard, forms, lists, pages

log = logging.getLogger("deb_orchestrator.hub")
API = "/api/v1"
MULTIPART_UPLOADS = (f"{API}/builds/upload",)  # bodies parsed by the framework: counted by BodyLimit
# the routers under /api/v1, busiest first (routes match in order); apidoc.py documents the same
API_ROUTERS = (tasks, builds, tags, targets, repos, hosts, tokens, events, gc, webhooks, audit_api)


class RepoFiles(StaticFiles):
    """The tag repositories: their files came from users and builders, so no type is guessed from a name
    (a pool file named .html must not become a page on the hub's origin): indices are text/plain, keys
    application/pgp-keys, everything else application/octet-stream, and browsers are told not to sniff."""

    TEXT = ("Release", "InRelease", "Packages", "Sources")

    def file_response(self, full_path: Any, stat_result: os.stat_result, scope: Any,
                      status_code: int = 200) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        name = os.path.basename(str(full_path))
        if name in self.TEXT:
            kind = "text/plain; charset=utf-8"
        elif name.endswith(".asc") or name == "Release.gpg":
            kind = "application/pgp-keys" if name.endswith(".asc") else "application/pgp-signature"
        elif name.endswith(".xz"):
            kind = "application/x-xz"
        else:
            kind = "application/octet-stream"
        response.headers["content-type"] = kind
        response.headers.update(SAFE_HEADERS)
        return response


class BodyTooLarge(Exception):
    pass


class BodyLimit:
    """Counts the request body of multipart uploads as it arrives and answers 413 once it passes ``limit``
    (the framework spools multipart bodies to disk before a handler could count them)."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] not in MULTIPART_UPLOADS:
            await self.app(scope, receive, send)
            return
        message = f"the upload is larger than the hub's limit of {mib(self.limit)}"
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await JSONResponse({"detail": message}, status_code=413)(scope, receive, send)
            return
        received = 0
        too_large = False
        started = False

        async def counting_receive() -> Any:
            nonlocal received, too_large
            msg = await receive()
            if msg["type"] == "http.request":
                received += len(msg.get("body", b""))
                if received > self.limit:
                    too_large = True
                    raise BodyTooLarge(message)
            return msg

        async def guarded_send(msg: Any) -> None:
            nonlocal started
            if too_large:  # whatever the framework answers to the interrupted body, the answer is 413
                return
            started = True
            await send(msg)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except BodyTooLarge:
            pass
        if too_large and not started:
            await JSONResponse({"detail": message}, status_code=413)(scope, receive, send)
DESCRIPTION = """deb-orchestrator's hub: Koji for Debian.

Reads (GET) are open; changes need a token (`Authorization: Bearer TOKEN`) with a scope:
`admin` (everything), `build` (submit, cancel, resubmit), `tag` (tag, untag, regen-repo),
`builder` (claim and report tasks; tokens made by `add-host`). Errors answer `{"detail": "…"}`.
Tag repositories are served at `/repos/<tag>/` (signed; key at `/repos/<tag>/key.asc`).
Every change, and every refused attempt (401, 403), is recorded in the audit log (`GET /audit`, scope admin).
"""


def add_error_handlers(app: FastAPI, the_hub: Hub, settings: HubSettings) -> None:
    """Errors as JSON ``{"detail": …}`` with their status; a 401/403 a route raised is audited."""

    @app.exception_handler(HubError)
    async def hub_error(request: Request, exc: HubError) -> JSONResponse:
        who = getattr(request.state, "audit", None)
        if exc.status in (401, 403) and isinstance(who, audit.Actor):  # refused by the route (not your build…)
            await anyio.to_thread.run_sync(audit.refused, the_hub.db, settings.audit_refused_window, who, exc.status,
                                           exc.message)
        return JSONResponse({"detail": exc.message}, status_code=exc.status)

    @app.exception_handler(DataError)
    async def data_error(_: Request, exc: DataError) -> JSONResponse:
        return JSONResponse({"detail": f"value refused by the database: {exc.orig}"}, status_code=400)

    @app.exception_handler(IntegrityError)
    async def integrity_error(_: Request, exc: IntegrityError) -> JSONResponse:
        return JSONResponse({"detail": "conflicts with existing data; look it up and try again"}, status_code=409)

    @app.exception_handler(OverflowError)
    async def overflow(_: Request, exc: OverflowError) -> JSONResponse:
        return JSONResponse({"detail": f"number out of range: {exc}"}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
                  for e in exc.errors()]
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(p) for p in first["loc"])
        return JSONResponse({"detail": f"{where}: {first['msg']}", "errors": errors}, status_code=422)


def create_app(settings: HubSettings, hub: Hub | None = None) -> FastAPI:
    """Build the app. The hub (database, threads) starts with the app's lifespan."""
    the_hub = hub or Hub(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        # request threads (sync endpoints, run_in_threadpool) each hold a database connection: no more of
        # them than the pool keeps, so connections are reused instead of opened and closed per request
        anyio.to_thread.current_default_thread_limiter().total_tokens = POOL_SIZE
        the_hub.work.bind(loop)
        the_hub.repos_changed.bind(loop)
        the_hub.events.bind(loop)
        the_hub.start()
        try:
            yield
        finally:
            the_hub.stop()

    app = FastAPI(title="deb-orchestrator hub", version="1", description=DESCRIPTION, lifespan=lifespan,
                  openapi_url=f"{API}/openapi.json", docs_url=f"{API}/docs", redoc_url=None)
    app.state.hub = the_hub
    app.add_middleware(BodyLimit, limit=settings.max_upload_bytes)
    app.add_middleware(RequestCounter, metrics=the_hub.metrics)  # the outermost: counts the answers of BodyLimit too
    for module in API_ROUTERS:
        app.include_router(module.router, prefix=API)
    app.include_router(metrics.router)

    add_error_handlers(app, the_hub, settings)

    @app.get(f"{API}/health", tags=["hub"], summary="Liveness and versions")
    def health() -> dict[str, Any]:
        return {"ok": True, "database": "sqlite" if the_hub.db.is_sqlite else "postgresql",
                "key": the_hub.key.fingerprint if the_hub.key else None,
                "workers": the_hub.settings.workers, "pid": os.getpid(), "primary": the_hub.primary}

    @app.get("/repos/{tag}/key.asc", include_in_schema=False)
    def key_asc(tag: str) -> Any:
        path = settings.repos_dir / tag / "key.asc"
        if "/" in tag or tag.startswith(".") or not path.is_file():
            raise NotFound(f"no repository for tag {tag!r} (yet)")
        return FileResponse(path, media_type="application/pgp-keys")

    @app.get("/key.asc", include_in_schema=False)
    def hub_key() -> PlainTextResponse:
        if the_hub.key is None:
            raise NotFound("this hub does not sign repositories")
        return PlainTextResponse(the_hub.key.public_armored(), media_type="application/pgp-keys")

    settings.repos_dir.mkdir(parents=True, exist_ok=True)
    app.mount("/repos", RepoFiles(directory=Path(settings.repos_dir), follow_symlink=True), name="repos")
    for web in (dashboard, lists, pages, forms):
        app.include_router(web.router)
    app.add_exception_handler(forms.WebRefused, forms.refused_page)

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/dashboard")

    return app
