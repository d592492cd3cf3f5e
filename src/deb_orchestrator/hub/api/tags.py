"""Tags: ordered inheritance, external repos, tagging builds, listing what a tag holds."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from deb_orchestrator.hub import actions, audit, builds, events, inheritance
from deb_orchestrator.hub.api.common import build_json, hub_of, tag_json
from deb_orchestrator.hub.auth import Principal, require
from deb_orchestrator.hub.errors import Conflict, HubError, NotFound
from deb_orchestrator.hub.models import Build, ExternalRepo, Repo, Tag, TagListing, TagParent, Target
from deb_orchestrator.states import AuditAction
from deb_orchestrator.wire import (
    ExternalRepoIn,
    TagBuildIn,
    TagBuildOut,
    TaggedBuild,
    TagIn,
    TagOut,
    TagRemoved,
    TagUpdate,
)

router = APIRouter(prefix="/tags", tags=["tags"])


def _set_parents(s: Session, tag: Tag, parents: list[str]) -> None:
    s.execute(delete(TagParent).where(TagParent.tag_id == tag.id))
    for i, name in enumerate(parents):
        parent = builds.get_tag(s, name)
        if parent.id == tag.id or inheritance.would_cycle(s, tag.id, parent.id):
            raise HubError(f"tag {name} cannot be a parent of {tag.name}: inheritance would loop")
        if name in parents[:i]:
            raise HubError(f"parent {name} is listed twice")
        s.add(TagParent(tag_id=tag.id, parent_id=parent.id, priority=i))
        s.flush()


def _set_externals(s: Session, tag: Tag, repos: list[ExternalRepoIn]) -> None:
    s.execute(delete(ExternalRepo).where(ExternalRepo.tag_id == tag.id))
    for i, e in enumerate(repos):
        s.add(ExternalRepo(tag_id=tag.id, url=e.url.rstrip("/"), suite=e.suite, components=" ".join(e.components),
                           key=e.key, priority=i))


def _audited(s: Session, tag: Tag) -> dict[str, Any]:
    """What the audit log shows of a tag: arches, parents, external repos (their keys as digests)."""
    externals = s.scalars(select(ExternalRepo).where(ExternalRepo.tag_id == tag.id).order_by(ExternalRepo.priority))
    return {"arches": tag.arches.split(), "parents": inheritance.names(s, inheritance.parents(s, tag.id)),
            "external_repos": [{"url": e.url, "suite": e.suite, "components": e.components.split(),
                                "key": audit.key_digest(e.key)} for e in externals]}


@router.get("", summary="List tags", response_model=list[TagOut])
def list_tags(request: Request) -> list[dict[str, Any]]:
    with hub_of(request).db.session() as s:
        return [tag_json(s, t) for t in s.scalars(select(Tag).order_by(Tag.name))]


@router.post("", status_code=201, summary="Create a tag (scope admin)", response_model=TagOut)
def add_tag(body: TagIn, request: Request,
            who: Principal = Depends(require("admin", AuditAction.TAG_CREATE))) -> dict[str, Any]:
    hub = hub_of(request)
    with hub.db.session() as s:
        if s.scalar(select(Tag).where(Tag.name == body.name)) is not None:
            raise Conflict(f"tag {body.name} exists already")
        tag = Tag(name=body.name, arches=" ".join(body.arches))
        s.add(tag)
        s.flush()
        _set_parents(s, tag, body.parents)
        _set_externals(s, tag, body.external_repos)
        s.add(Repo(tag_id=tag.id, dirty=True))
        events.record(s, "tag.created", "tag", tag.id, who.user, parents=body.parents)
        s.flush()
        audit.record(s, audit.actor(request), "tag", tag.id, tag.name, audit.created(**_audited(s, tag)))
        out = tag_json(s, tag)
    hub.repos_dirty()
    return out


@router.get("/{name}", summary="Show a tag", response_model=TagOut)
def get_tag(name: str, request: Request) -> dict[str, Any]:
    with hub_of(request).db.session() as s:
        return tag_json(s, builds.get_tag(s, name))


@router.patch("/{name}", summary="Change a tag's parents, external repos or arches (scope admin)",
              response_model=TagOut)
def edit_tag(
    name: str, body: TagUpdate, request: Request, who: Principal = Depends(require("admin", AuditAction.TAG_EDIT))
) -> dict[str, Any]:
    hub = hub_of(request)
    with hub.db.session() as s:
        tag = builds.get_tag(s, name)
        old = _audited(s, tag)
        if body.parents is not None:
            _set_parents(s, tag, body.parents)
        if body.external_repos is not None:
            _set_externals(s, tag, body.external_repos)
        if body.arches is not None:
            tag.arches = " ".join(body.arches)
        events.record(s, "tag.edited", "tag", tag.id, who.user)
        builds.mark_dirty(s, tag.id)
        s.flush()
        audit.record(s, audit.actor(request), "tag", tag.id, tag.name, audit.changed(old, _audited(s, tag)))
        out = tag_json(s, tag)
    hub.repos_dirty()
    return out


@router.delete("/{name}", summary="Remove a tag and its published repository (scope tag; remove-tag)",
               responses={409: {"description": "still used by tags or targets"}}, response_model=TagRemoved)
def remove_tag(name: str, request: Request, force: bool = False,
               who: Principal = Depends(require("tag", AuditAction.TAG_REMOVE))) -> dict[str, Any]:
    """Refused (409) while a target builds in or lands in the tag, and while other tags inherit from it
    unless ``force`` (they then lose this parent and are republished)."""
    hub = hub_of(request)
    with hub.db.session() as s:
        tag = builds.get_tag(s, name)
        users = [f"{t.name} ({'build' if t.build_tag_id == tag.id else 'destination'} tag)"
                 for t in s.scalars(select(Target).order_by(Target.name).where(
                     (Target.build_tag_id == tag.id) | (Target.dest_tag_id == tag.id)))]
        if users:
            raise Conflict(f"tag {name} is used by target(s) {', '.join(users)}; remove them first with "
                           "remove-target")
        child_ids = list(s.scalars(select(TagParent.tag_id).where(TagParent.parent_id == tag.id)))
        children = inheritance.names(s, child_ids)
        if children and not force:
            raise Conflict(f"tag {name} is a parent of {', '.join(sorted(children))}; change their parents first, "
                           "or remove it anyway with --force (they stop inheriting from it)")
        affected = [t for t in inheritance.descendants(s, tag.id) if t != tag.id]
        tagged = sorted(b.ident for b, _ in builds.tagged_builds(s, tag.id, inherit=False))
        parents = inheritance.names(s, inheritance.parents(s, tag.id))
        s.execute(update(Build).where(Build.id.in_(select(TagListing.build_id).where(TagListing.tag_id == tag.id)))
                  .values(untagged=time.time()))  # gc's untagged retention counts from here
        audit.record(s, audit.actor(request), "tag", tag.id, name,
                     audit.removed(**_audited(s, tag), builds=tagged, children=sorted(children)))
        for table in (TagListing, ExternalRepo, Repo):
            s.execute(delete(table).where(table.tag_id == tag.id))
        s.execute(delete(TagParent).where((TagParent.tag_id == tag.id) | (TagParent.parent_id == tag.id)))
        s.delete(tag)
        s.flush()
        for tid in affected:
            builds.mark_dirty(s, tid)
        events.record(s, "tag.deleted", "tag", tag.id, who.user, name=name, builds=tagged, parents=parents,
                      children=children, force=force)
    removed = hub.publisher.remove(name)
    hub.repos_dirty()
    return {"tag": name, "deleted": True, "untagged_builds": tagged, "children_detached": sorted(children),
            "repo_removed": removed}


@router.get("/{name}/builds", summary="Builds in a tag (list-tagged); inherit=true follows inheritance",
            response_model=list[TaggedBuild])
def list_tagged(name: str, request: Request, inherit: bool = True) -> list[dict[str, Any]]:
    with hub_of(request).db.session() as s:
        tag = builds.get_tag(s, name)
        visible = builds.tagged_builds(s, tag.id, inherit=inherit)
        return [{**build_json(s, b), "tag": tag_name} for b, tag_name in visible]


@router.get("/{name}/latest/{package}", summary="The build of a source package a tag sees (latest-build)",
            response_model=TaggedBuild)
def latest_build(name: str, package: str, request: Request) -> dict[str, Any]:
    with hub_of(request).db.session() as s:
        tag = builds.get_tag(s, name)
        for b, tag_name in builds.tagged_builds(s, tag.id, inherit=True):
            if b.source == package:
                return {**build_json(s, b), "tag": tag_name}
        raise NotFound(f"tag {name} (with inheritance) has no build of {package}")


@router.post("/{name}/builds", status_code=201, summary="Tag a build (scope tag)", response_model=TagBuildOut)
def tag_build(
    name: str, body: TagBuildIn, request: Request, who: Principal = Depends(require("tag", AuditAction.BUILD_TAG))
) -> dict[str, Any]:
    return actions.tag_build(hub_of(request), who, audit.actor(request), name, body.build)


@router.delete("/{name}/builds/{build}", summary="Untag a build (scope tag)", response_model=TagBuildOut)
def untag_build(name: str, build: str, request: Request,
                who: Principal = Depends(require("tag", AuditAction.BUILD_UNTAG))) -> dict[str, Any]:
    return actions.untag_build(hub_of(request), who, audit.actor(request), name, build)
