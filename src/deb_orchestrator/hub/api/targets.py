"""Build targets: a build tag (what buildroots see) and a destination tag (where results land)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy import select

from deb_orchestrator.hub import builds, events
from deb_orchestrator.hub.api.common import hub_of, target_json
from deb_orchestrator.hub.auth import Principal, require
from deb_orchestrator.hub.errors import Conflict
from deb_orchestrator.hub.models import Target
from deb_orchestrator.hub.schemas import TargetIn

router = APIRouter(prefix="/targets", tags=["targets"])


@router.get("", summary="List targets")
def list_targets(request: Request) -> list[dict[str, Any]]:
    with hub_of(request).db.session() as s:
        return [target_json(t) for t in s.scalars(select(Target).order_by(Target.name))]


@router.post("", status_code=201, summary="Create a target (scope admin)")
def add_target(body: TargetIn, request: Request, who: Principal = Depends(require("admin"))) -> dict[str, Any]:
    with hub_of(request).db.session() as s:
        if s.scalar(select(Target).where(Target.name == body.name)) is not None:
            raise Conflict(f"target {body.name} exists already")
        target = Target(name=body.name, build_tag_id=builds.get_tag(s, body.build_tag).id,
                        dest_tag_id=builds.get_tag(s, body.dest_tag).id)
        s.add(target)
        s.flush()
        events.record(s, "target.created", "target", target.id, who.user, build_tag=body.build_tag,
                      dest_tag=body.dest_tag)
        s.refresh(target)
        return target_json(target)


@router.get("/{name}", summary="Show a target")
def get_target(name: str, request: Request) -> dict[str, Any]:
    with hub_of(request).db.session() as s:
        return target_json(builds.get_target(s, name))
