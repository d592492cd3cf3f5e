"""The long lists (tasks, builds, tags, targets, hosts): filters and a text search in the query string, one page
of rows at a time (``offset``, ``size``), and a constant number of queries per page whatever the rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, selectinload

from deb_orchestrator.hub.models import Build, Host, Repo, Tag, TagListing, TagParent, Target, Task
from deb_orchestrator.hub.web.render import Paging, page, when
from deb_orchestrator.states import BuildState, RepoState, TaskState

router = APIRouter(include_in_schema=False)


@dataclass
class Filter:
    """A field of a list's search form: free text, or a choice among ``options``."""

    name: str
    label: str
    options: list[str] | None = None
    value: str = ""


def _filters(request: Request, paging: Paging, *fields: Filter) -> list[Filter]:
    for f in fields:
        value = request.query_params.get(f.name, "").strip()[:200]
        f.value = value if f.options is None or value in f.options else ""
    paging.query = {f.name: f.value for f in fields}
    return list(fields)


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _list(request: Request, s: Session, title: str, columns: list[str], rows: list[list[Any]],
          links: dict[int, str], paging: Paging, filters: list[Filter]) -> HTMLResponse:
    return page(request, "table.html", title, s=s, columns=columns, rows=rows, links=links, paging=paging,
                filters=filters)


def _session(request: Request) -> Any:
    return request.app.state.hub.db.session()


@router.get("/tasks", response_class=HTMLResponse)
def tasks(request: Request) -> HTMLResponse:
    paging = Paging.of(request)
    state, method, arch, host, text = _filters(
        request, paging, Filter("state", "State", list(TaskState)),
        Filter("method", "Method", ["build", "buildArch", "noop"]), Filter("arch", "Arch"),
        Filter("host", "Host"), Filter("q", "Owner or error"))
    with _session(request) as s:
        q = select(Task).options(selectinload(Task.host)).order_by(Task.id.desc())
        for f, column in ((state, Task.state), (method, Task.method), (arch, Task.arch)):
            if f.value:
                q = q.where(column == f.value)
        if host.value:
            q = q.where(Task.host_id.in_(select(Host.id).where(Host.name == host.value)))
        if text.value:
            q = q.where(or_(Task.owner == text.value, Task.error.like(_like(text.value), escape="\\")))
        found = paging.rows(list(s.scalars(q.offset(paging.offset).limit(paging.limit))))
        rows = [[t.id, t.parent_id or "", t.method, t.arch, t.state, t.host.name if t.host else "", t.attempts,
                 when(t.created), t.error or ""] for t in found]
        return _list(request, s, "Tasks", ["ID", "Parent", "Method", "Arch", "State", "Host", "Attempts", "Created",
                                           "Error"], rows, {0: "/tasks/{}", 1: "/tasks/{}", 5: "/hosts/{}"},
                     paging, [state, method, arch, host, text])


@router.get("/builds", response_class=HTMLResponse)
def builds(request: Request) -> HTMLResponse:
    paging = Paging.of(request)
    state, text, owner = _filters(request, paging, Filter("state", "State", list(BuildState)),
                                  Filter("q", "Source"), Filter("owner", "Owner"))
    with _session(request) as s:
        q = select(Build).options(selectinload(Build.target)).order_by(Build.id.desc())
        if state.value:
            q = q.where(Build.state == state.value)
        if text.value:
            q = q.where(Build.source.like(_like(text.value), escape="\\"))
        if owner.value:
            q = q.where(Build.owner == owner.value)
        found = paging.rows(list(s.scalars(q.offset(paging.offset).limit(paging.limit))))
        rows = [[b.id, b.ident, b.state, b.target.name if b.target else "", b.owner, b.task_id or "",
                 when(b.created), when(b.completed)] for b in found]
        return _list(request, s, "Builds", ["ID", "Build", "State", "Target", "Owner", "Task", "Created",
                                            "Completed"], rows, {0: "/builds/{}", 1: "/builds/{}", 5: "/tasks/{}"},
                     paging, [state, text, owner])


@router.get("/tags", response_class=HTMLResponse)
def tags(request: Request) -> HTMLResponse:
    paging = Paging.of(request)
    (text,) = _filters(request, paging, Filter("q", "Name"))
    with _session(request) as s:
        q = select(Tag).order_by(Tag.name)
        if text.value:
            q = q.where(Tag.name.like(_like(text.value), escape="\\"))
        found = paging.rows(list(s.scalars(q.offset(paging.offset).limit(paging.limit))))
        ids = [t.id for t in found]
        counts = dict(s.execute(select(TagListing.tag_id, func.count(func.distinct(TagListing.build_id)))
                                .where(TagListing.tag_id.in_(ids)).group_by(TagListing.tag_id)).all())
        parents: dict[int, list[str]] = {}
        for tag_id, name in s.execute(select(TagParent.tag_id, Tag.name).join(Tag, Tag.id == TagParent.parent_id)
                                      .where(TagParent.tag_id.in_(ids)).order_by(TagParent.priority)):
            parents.setdefault(tag_id, []).append(name)
        repos = {r.tag_id: r for r in s.scalars(select(Repo).where(Repo.tag_id.in_(ids)))}
        rows = []
        for t in found:
            repo = repos.get(t.id)
            rows.append([t.name, t.arches, ", ".join(parents.get(t.id, [])), counts.get(t.id, 0),
                         repo.generation if repo else 0, repo.state if repo else RepoState.PENDING,
                         when(repo.published if repo else None)])
        return _list(request, s, "Tags", ["Tag", "Arches", "Parents", "Builds tagged here", "Repo generation",
                                          "Repo state", "Published"], rows, {0: "/tags/{}"}, paging, [text])


@router.get("/targets", response_class=HTMLResponse)
def targets(request: Request) -> HTMLResponse:
    paging = Paging.of(request)
    (text,) = _filters(request, paging, Filter("q", "Name"))
    with _session(request) as s:
        q = select(Target).options(selectinload(Target.build_tag), selectinload(Target.dest_tag))
        if text.value:
            q = q.where(Target.name.like(_like(text.value), escape="\\"))
        found = paging.rows(list(s.scalars(q.order_by(Target.name).offset(paging.offset).limit(paging.limit))))
        rows = [[t.name, t.build_tag.name, t.dest_tag.name, _plugins(t)] for t in found]
        return _list(request, s, "Targets", ["Target", "Build tag", "Destination tag", "deb-mock plugins"], rows,
                     {1: "/tags/{}", 2: "/tags/{}"}, paging, [text])


def _plugins(t: Target) -> str:
    """What a target's builds run (with options), what requests may add, what they switch off."""
    runs = ", ".join(f"{n} ({', '.join(f'{k}={v}' for k, v in o.items())})" if o else n
                     for n, o in (t.plugins or {}).items())
    parts = [runs, f"requests may add {', '.join(t.request_plugins)}" if t.request_plugins else "",
             f"off: {', '.join(t.disable_plugins)}" if t.disable_plugins else ""]
    return "; ".join(p for p in parts if p)


@router.get("/hosts", response_class=HTMLResponse)
def hosts(request: Request) -> HTMLResponse:
    paging = Paging.of(request)
    (text,) = _filters(request, paging, Filter("q", "Name"))
    with _session(request) as s:
        q = select(Host).order_by(Host.name)
        if text.value:
            q = q.where(Host.name.like(_like(text.value), escape="\\"))
        found = paging.rows(list(s.scalars(q.offset(paging.offset).limit(paging.limit))))
        load = dict(s.execute(select(Task.host_id, func.count(Task.id)).where(
            Task.state == TaskState.OPEN, Task.host_id.in_([h.id for h in found])).group_by(Task.host_id))
            .all())
        rows = [[h.name, h.arches, f"{load.get(h.id, 0)}/{h.capacity}", "yes" if h.enabled else "no",
                 when(h.last_heartbeat)] for h in found]
        return _list(request, s, "Hosts", ["Host", "Arches", "Running/capacity", "Enabled", "Last heartbeat"],
                     rows, {0: "/hosts/{}"}, paging, [text])
