"""The audit log: who changed what, when and from where, refused attempts included (scope admin)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from deb_orchestrator.hub import audit
from deb_orchestrator.hub.api.common import hub_of
from deb_orchestrator.hub.auth import Principal, require
from deb_orchestrator.hub.errors import HubError
from deb_orchestrator.states import AuditAction
from deb_orchestrator.wire import AuditOut

router = APIRouter(prefix="/audit", tags=["audit"])
TIME = ("ISO 8601 (`2026-12-05T10:00:00Z`; UTC when it names no zone) or seconds since the epoch")


@router.get("", summary="Audit records, newest first (scope admin)", response_model=list[AuditOut],
            description="Every state-changing call, committed with its change, and refused attempts (401, 403; "
                        "one record per client address, action and status within the hub's window, with a "
                        "`count`). Filters combine; page back with `before` = the last ID of a page.")
def list_audit(
    request: Request,
    since: Annotated[str | None, Query(max_length=40, description=f"records at or after this time: {TIME}")] = None,
    until: Annotated[str | None, Query(max_length=40, description=f"records before this time: {TIME}")] = None,
    user: Annotated[str | None, Query(max_length=200)] = None,
    action: Annotated[str | None, Query(max_length=40, description=f"one of {', '.join(AuditAction)}")] = None,
    obj: Annotated[str | None, Query(alias="object", max_length=320, description="KIND, KIND:NAME or KIND:ID, e.g. "
                                                                     "build:hello_2.10-3, task:7, host")] = None,
    before: Annotated[int | None, Query(ge=1, le=2**31 - 1, description="only records with a smaller ID")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    who: Principal = Depends(require("admin", AuditAction.AUDIT_READ)),
) -> list[dict[str, Any]]:
    try:
        start = audit.parse_time(since, "since") if since else None
        end = audit.parse_time(until, "until") if until else None
    except ValueError as exc:
        raise HubError(str(exc)) from None
    if action and action not in set(AuditAction):
        raise HubError(f"action={action!r}: unknown; one of {', '.join(sorted(AuditAction))}")
    q = audit.query(since=start, until=end, user=user, action=action, obj=obj, before=before, limit=limit)
    with hub_of(request).db.session() as s:
        return [audit.as_json(r) for r in s.scalars(q)]
