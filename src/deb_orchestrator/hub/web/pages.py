"""The detail pages (server-rendered with Jinja2, escaped): each build, task, tag and host, linked to one another,
with the forms of their actions for a signed-in viewer (web/forms.py) and live updates of running tasks and
builds (static/webui.js). The lists are in web/lists.py, the dashboard in web/dashboard.py."""

from __future__ import annotations

import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from deb_orchestrator.hub import builds as buildlogic
from deb_orchestrator.hub import inheritance
from deb_orchestrator.hub.db import Database
from deb_orchestrator.hub.errors import NotFound
from deb_orchestrator.hub.models import Artifact, BinaryPackage, Build, Event, Host, Tag, TagListing, Target, Task
from deb_orchestrator.hub.repos import repo_info
from deb_orchestrator.hub.web.render import Paging, page
from deb_orchestrator.states import TaskState

router = APIRouter(include_in_schema=False)
BUILDINFO_SHOWN = 256 << 10  # a .buildinfo larger than this is only linked
RECENT = 20  # a host's recent tasks shown; /tasks?host=NAME pages through them all


@dataclass
class TaskNode:
    task: Task
    children: list[TaskNode] = field(default_factory=list)


def _not_found(request: Request, exc: NotFound) -> HTMLResponse:
    return page(request, "error.html", "Not found", 404, message=exc.message)


def _session(request: Request) -> AbstractContextManager[Session]:
    """A read transaction; pages render inside it (lazy relations load while the template runs)."""
    db: Database = request.app.state.hub.db
    return db.session()


# ---------------------------------------------------------------------------------------------- details
def _tree(s: Session, root: Task) -> TaskNode:
    return TaskNode(root, [_tree(s, c) for c in buildlogic.children(s, root.id)])


@router.get("/builds/{ref}", response_class=HTMLResponse)
def build_page(ref: str, request: Request) -> HTMLResponse:
    store = request.app.state.hub.store
    with _session(request) as s:
        try:
            b = buildlogic.get_build(s, ref)
        except NotFound as exc:
            return _not_found(request, exc)
        roots = list(s.scalars(select(Task).where(Task.build_id == b.id, Task.parent_id.is_(None))
                               .order_by(Task.id.desc())))
        files = list(s.scalars(select(Artifact).where(Artifact.build_id == b.id).order_by(Artifact.id)))
        buildinfos = []
        for f in files:
            if f.kind == "buildinfo" and f.size <= BUILDINFO_SHOWN and store.has(f.sha256):
                buildinfos.append((f"{f.name} (task {f.task_id})",
                                   store.path(f.sha256).read_text(encoding="utf-8", errors="replace")))
        leaves = list(s.scalars(select(Task).where(Task.build_id == b.id, Task.method == "buildArch")
                                .order_by(Task.id)))
        tagged = list(s.scalars(select(Tag.name).join(TagListing, TagListing.tag_id == Tag.id)
                                .where(TagListing.build_id == b.id).order_by(Tag.name)))
        return page(
            request, "build.html", f"Build {b.ident}", s=s, b=b, trees=[_tree(s, r) for r in roots], files=files,
            logs=[f for f in files if f.kind in ("log", "result") and f.task_id],
            file_url=lambda f: f"/api/v1/builds/{b.id}/files/{quote(f.name)}"
            + (f"?task={f.task_id}" if f.task_id else ""),
            packages=list(s.scalars(select(BinaryPackage).where(BinaryPackage.build_id == b.id)
                                    .order_by(BinaryPackage.name, BinaryPackage.arch))),
            buildinfos=buildinfos, tagged=tagged,
            buildroots=[(t.id, t.arch, t.buildroot) for t in leaves if t.buildroot],
            plugin_results=[(t.id, t.arch, t.plugins) for t in leaves if t.plugins],  # build_plugins.html
        )


@router.get("/tasks/{task_id}", response_class=HTMLResponse)
def task_page(task_id: str, request: Request) -> HTMLResponse:
    with _session(request) as s:
        try:
            if not task_id.isdigit() or int(task_id) >= 2**31:
                raise NotFound(f"no task {task_id!r}: tasks are named by number")
            t = buildlogic.get_task(s, int(task_id))
        except NotFound as exc:
            return _not_found(request, exc)
        history = list(s.scalars(select(Event).where(Event.object_type == "task", Event.object_id == t.id)
                                 .order_by(Event.id)))
        return page(
            request, "task.html", f"Task {t.id}: {t.method}{' ' + t.arch if t.arch else ''}", s=s, t=t,
            build=s.get(Build, t.build_id) if t.build_id else None,
            parent=s.get(Task, t.parent_id) if t.parent_id else None,
            children=buildlogic.children(s, t.id), history=history,
            files=list(s.scalars(select(Artifact).where(Artifact.task_id == t.id).order_by(Artifact.id))),
            file_url=lambda f: f"/api/v1/tasks/{t.id}/files/{quote(f.name)}",
        )


@router.get("/tags/{name}", response_class=HTMLResponse)
def tag_page(name: str, request: Request) -> HTMLResponse:
    with _session(request) as s:
        try:
            tag = buildlogic.get_tag(s, name)
        except NotFound as exc:
            return _not_found(request, exc)
        paging = Paging.of(request)
        text = request.query_params.get("q", "").strip()[:200]
        paging.query = {"q": text}
        visible = buildlogic.tagged_builds(s, tag.id, inherit=True)
        matching = [(b, t) for b, t in visible if text in b.source] if text else visible
        shown = paging.rows(matching[paging.offset:paging.offset + paging.limit])
        chain = inheritance.order(s, tag.id)
        tag_names = dict(zip(chain, inheritance.names(s, chain), strict=True))
        children = list(s.scalars(select(Tag.name).where(Tag.id.in_(
            [i for i in inheritance.descendants(s, tag.id) if i != tag.id])).order_by(Tag.name)))
        return page(
            request, "tag.html", f"Tag {tag.name}", s=s, tag=tag,
            parents=inheritance.names(s, inheritance.parents(s, tag.id)), chain=list(tag_names.values()),
            children=children,
            targets=list(s.scalars(select(Target).where(or_(Target.build_tag_id == tag.id,
                                                            Target.dest_tag_id == tag.id)).order_by(Target.name))),
            repo=repo_info(s, tag), base_url=str(request.base_url).rstrip("/"),
            externals=[(tag_names[e.tag_id], e) for e in inheritance.external_repos(s, tag.id)],
            builds=shown, builds_total=len(visible), paging=paging, search=text,
        )


@router.get("/hosts/{name}", response_class=HTMLResponse)
def host_page(name: str, request: Request) -> HTMLResponse:
    with _session(request) as s:
        host = s.scalar(select(Host).where(Host.name == name))
        if host is None:
            return _not_found(request, NotFound(f"no host {name!r}; see the list of hosts"))
        current = list(s.scalars(select(Task).where(Task.host_id == host.id, Task.state == TaskState.OPEN)
                                 .order_by(Task.id)))
        recent = list(s.scalars(select(Task).where(Task.host_id == host.id, Task.state != TaskState.OPEN)
                                .order_by(Task.id.desc()).limit(RECENT)))
        ago = round(time.time() - host.last_heartbeat) if host.last_heartbeat else None
        return page(request, "host.html", f"Host {host.name}", s=s, host=host, current=current, recent=recent, ago=ago)
