"""Tag repositories: state and generation, regeneration, and waiting for a build to be published."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select

from deb_orchestrator.hub import audit, builds, events
from deb_orchestrator.hub.api.common import hub_of
from deb_orchestrator.hub.auth import Principal, require
from deb_orchestrator.hub.models import Repo, Tag
from deb_orchestrator.hub.repos import repo_info
from deb_orchestrator.states import AuditAction, RepoState
from deb_orchestrator.wire import RepoOut, RepoWaitOut

router = APIRouter(prefix="/repos", tags=["repos"])


@router.get("", summary="Every tag repository with its generation and state", response_model=list[RepoOut])
def list_repos(request: Request) -> list[dict[str, Any]]:
    with hub_of(request).db.session() as s:
        return [repo_info(s, t) for t in s.scalars(select(Tag).order_by(Tag.name))]


@router.get("/{tag}", summary="A tag repository: generation, state, builds it holds", response_model=RepoOut)
def get_repo(tag: str, request: Request) -> dict[str, Any]:
    with hub_of(request).db.session() as s:
        return repo_info(s, builds.get_tag(s, tag))


@router.post("/{tag}/regen", status_code=202, summary="Publish a tag's repository again (scope tag)",
             response_model=RepoOut)
def regen(tag: str, request: Request,
          who: Principal = Depends(require("tag", AuditAction.REPO_REGEN))) -> dict[str, Any]:
    hub = hub_of(request)
    with hub.db.session() as s:
        t = builds.get_tag(s, tag)
        was = s.scalar(select(Repo.dirty).where(Repo.tag_id == t.id))
        builds.mark_dirty(s, t.id)
        events.record(s, "repo.regen-requested", "tag", t.id, who.user)
        audit.record(s, audit.actor(request), "repo", t.id, t.name, {"dirty": [was, True]})
        s.flush()
        out = repo_info(s, t)
    hub.repos_dirty()
    return out


@router.get("/{tag}/wait", summary="Long-poll until the repo is published (newer than `after`, holding `build`)",
            response_model=RepoWaitOut)
async def wait(tag: str, request: Request, build: str | None = None, after: int = 0,
               timeout: float = 30.0) -> dict[str, Any]:
    hub = hub_of(request)
    deadline = time.monotonic() + max(0.0, min(timeout, 120.0))

    def look() -> tuple[dict[str, Any], bool]:
        with hub.db.session() as s:
            info = repo_info(s, builds.get_tag(s, tag))
            ident = builds.get_build(s, build).ident if build else None
        done = (info["state"] == RepoState.READY and not info["dirty"] and int(info["generation"]) > after  # type: ignore[call-overload]
                and (ident is None or ident in info["builds"]))  # type: ignore[operator]
        return info, done

    while True:
        seen = hub.repos_changed.generation
        info, done = await run_in_threadpool(look)
        remaining = deadline - time.monotonic()
        if done or remaining <= 0:
            return {**info, "done": done}
        await hub.repos_changed.wait(seen, min(remaining, 1.0))
