"""Build targets: a build tag (what buildroots see) and a destination tag (where results land)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy import select, update

from deb_orchestrator.hub import audit, buildplugins, builds, events
from deb_orchestrator.hub.api.common import hub_of, target_json
from deb_orchestrator.hub.auth import Principal, require
from deb_orchestrator.hub.errors import Conflict
from deb_orchestrator.hub.models import Build, Target
from deb_orchestrator.states import AuditAction
from deb_orchestrator.wire import TargetIn, TargetOut, TargetRemoved, TargetUpdate

router = APIRouter(prefix="/targets", tags=["targets"])


@router.get("", summary="List targets", response_model=list[TargetOut])
def list_targets(request: Request) -> list[dict[str, Any]]:
    with hub_of(request).db.session() as s:
        return [target_json(t) for t in s.scalars(select(Target).order_by(Target.name))]


@router.post("", status_code=201, summary="Create a target (scope admin)", response_model=TargetOut)
def add_target(body: TargetIn, request: Request,
               who: Principal = Depends(require("admin", AuditAction.TARGET_CREATE))) -> dict[str, Any]:
    with hub_of(request).db.session() as s:
        if s.scalar(select(Target).where(Target.name == body.name)) is not None:
            raise Conflict(f"target {body.name} exists already")
        hub_of(request).plugins.check_policy(body.policy)
        buildplugins.check_fields(body.plugins, body.request_plugins, body.disable_plugins)
        buildplugins.check_target(body.plugins, body.request_plugins, body.disable_plugins)
        target = Target(name=body.name, build_tag_id=builds.get_tag(s, body.build_tag).id,
                        dest_tag_id=builds.get_tag(s, body.dest_tag).id, plugins=body.plugins,
                        request_plugins=body.request_plugins, policy=body.policy,
                        disable_plugins=body.disable_plugins)
        s.add(target)
        s.flush()
        events.record(s, "target.created", "target", target.id, who.user, build_tag=body.build_tag,
                      dest_tag=body.dest_tag)
        audit.record(s, audit.actor(request), "target", target.id, target.name,
                     audit.created(build_tag=body.build_tag, dest_tag=body.dest_tag,
                                   **{k: v for k, v in _plugins(target).items() if v}))
        s.refresh(target)
        return target_json(target)


@router.get("/{name}", summary="Show a target", response_model=TargetOut)
def get_target(name: str, request: Request) -> dict[str, Any]:
    with hub_of(request).db.session() as s:
        return target_json(builds.get_target(s, name))


def _plugins(t: Target) -> dict[str, Any]:
    return {"plugins": t.plugins or {}, "request_plugins": t.request_plugins or [], "policy": t.policy or {},
            "disable_plugins": t.disable_plugins or []}


@router.patch("/{name}", summary="Change a target's plugins, the plugins requests may add, those its builds switch "
                                 "off, its policy (scope admin)",
              description="The fields given replace the target's. Builds submitted from then on use them; a build "
                          "keeps the plugins it was submitted with (also when resubmitted). The policy applies to "
                          "every tagging into the target's destination tag from then on.",
              response_model=TargetOut)
def edit_target(name: str, body: TargetUpdate, request: Request,
                who: Principal = Depends(require("admin", AuditAction.TARGET_EDIT))) -> dict[str, Any]:
    with hub_of(request).db.session() as s:
        target = builds.get_target(s, name)
        old = _plugins(target)
        if body.policy is not None:
            hub_of(request).plugins.check_policy(body.policy)
            target.policy = body.policy
        buildplugins.check_fields(body.plugins, body.request_plugins, body.disable_plugins)
        if body.plugins is not None:
            target.plugins = body.plugins
        if body.request_plugins is not None:
            target.request_plugins = body.request_plugins
        if body.disable_plugins is not None:
            target.disable_plugins = body.disable_plugins
        buildplugins.check_target(target.plugins or {}, target.request_plugins or [], target.disable_plugins or [])
        new = _plugins(target)
        events.record(s, "target.edited", "target", target.id, who.user, **new)
        audit.record(s, audit.actor(request), "target", target.id, target.name, audit.changed(old, new))
        return target_json(target)


@router.delete("/{name}", summary="Remove a target (scope admin; remove-target)",
               responses={409: {"description": "builds for it are still running"}}, response_model=TargetRemoved)
def remove_target(name: str, request: Request,
                  who: Principal = Depends(require("admin", AuditAction.TARGET_REMOVE))) -> dict[str, Any]:
    """Refused (409) while builds submitted to it are building or waiting for dependencies; the finished
    ones keep their tags and files but no longer name a target (the event log keeps the name)."""
    with hub_of(request).db.session() as s:
        target = builds.get_target(s, name)
        active = list(s.scalars(select(Build.ident).where(Build.target_id == target.id,
                                                          Build.state.in_(builds.BUILD_ACTIVE)).order_by(Build.id)))
        if active:
            shown = ", ".join(active[:10]) + (f" and {len(active) - 10} more" if len(active) > 10 else "")
            raise Conflict(f"target {name} has builds in progress: {shown}; wait for them or cancel them first")
        detached = list(s.scalars(select(Build.ident).where(Build.target_id == target.id).order_by(Build.id)))
        s.execute(update(Build).where(Build.target_id == target.id).values(target_id=None))
        events.record(s, "target.deleted", "target", target.id, who.user, name=name,
                      build_tag=target.build_tag.name, dest_tag=target.dest_tag.name, builds=detached)
        audit.record(s, audit.actor(request), "target", target.id, name,
                     audit.removed(build_tag=target.build_tag.name, dest_tag=target.dest_tag.name, builds=detached))
        s.delete(target)
        return {"target": name, "deleted": True, "builds_detached": detached}
