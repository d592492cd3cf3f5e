"""`deb-orchestrator gc` as an admin call, so that it works against a remote hub (hub/gc.py does the work)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session

from deb_orchestrator.hub import audit, gc
from deb_orchestrator.hub.api.common import hub_of
from deb_orchestrator.hub.auth import Principal, require
from deb_orchestrator.states import AuditAction
from deb_orchestrator.wire import GcIn, GcReport

router = APIRouter(tags=["hub"])


@router.post("/gc", summary="Collect what the retention lets go (scope admin); dry_run reports only",
             description="Builds past their retention (complete and in no tag, failed or canceled) are marked "
                         "`deleted` and lose their files (the row stays: a source version is built once per hub); "
                         "log files of old tasks of builds in no tag, old event rows, store objects no live build "
                         "names and old leftovers of the store's tmp/ go. Never a tagged build, a build a published "
                         "repository lists or one with a task waiting or running. The retention is the hub's "
                         "(`hub --retain`) with the call's overrides. 409 while another gc runs.",
             response_model=GcReport)
def run_gc(body: GcIn, request: Request, who: Principal = Depends(require("admin", AuditAction.HUB_GC))) -> GcReport:
    hub = hub_of(request)
    actor = audit.actor(request)

    def record(s: Session, changes: dict[str, Any]) -> None:
        audit.record(s, actor, "hub", None, "gc", changes)

    return gc.run(hub.db, hub.store, hub.settings.repos_dir, hub.settings.retention, body, who.user, record)
