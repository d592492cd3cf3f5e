"""Read-only pages. Each page is a table read straight from the database."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy import select

from deb_orchestrator.hub import builds as buildlogic
from deb_orchestrator.hub.models import Build, Host, Tag, Task
from deb_orchestrator.hub.repos import repo_info

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts)) if ts else ""


templates.env.filters["when"] = _when


def _render(request: Request, title: str, columns: list[str], rows: list[list[Any]],
            links: dict[int, str] | None = None) -> HTMLResponse:
    return templates.TemplateResponse(request, "table.html",
                                      {"title": title, "columns": columns, "rows": rows, "links": links or {}})


@router.get("/tasks", response_class=HTMLResponse)
def tasks(request: Request) -> HTMLResponse:
    with request.app.state.hub.db.session() as s:
        rows = [[t.id, t.parent_id or "", t.method, t.arch, t.state, t.host.name if t.host else "", t.attempts,
                 _when(t.created), t.error or ""]
                for t in s.scalars(select(Task).order_by(Task.id.desc()).limit(200))]
    return _render(request, "Tasks", ["ID", "Parent", "Method", "Arch", "State", "Host", "Attempts", "Created",
                                      "Error"], rows)


@router.get("/builds", response_class=HTMLResponse)
def builds(request: Request) -> HTMLResponse:
    with request.app.state.hub.db.session() as s:
        rows = [[b.id, b.ident, b.state, b.target.name if b.target else "", b.owner, b.task_id or "",
                 _when(b.created), _when(b.completed)]
                for b in s.scalars(select(Build).order_by(Build.id.desc()).limit(200))]
    return _render(request, "Builds", ["ID", "Build", "State", "Target", "Owner", "Task", "Created", "Completed"],
                   rows)


@router.get("/tags", response_class=HTMLResponse)
def tags(request: Request) -> HTMLResponse:
    with request.app.state.hub.db.session() as s:
        rows = []
        for t in s.scalars(select(Tag).order_by(Tag.name)):
            info = repo_info(s, t)
            visible = buildlogic.tagged_builds(s, t.id, inherit=True)
            rows.append([t.name, t.arches, len(visible), info["generation"], info["state"], _when(info["published"])])  # type: ignore[arg-type]
    return _render(request, "Tags", ["Tag", "Arches", "Builds (inherited too)", "Repo generation", "Repo state",
                                     "Published"], rows)


@router.get("/hosts", response_class=HTMLResponse)
def hosts(request: Request) -> HTMLResponse:
    with request.app.state.hub.db.session() as s:
        rows = [[h.name, h.arches, h.capacity, "yes" if h.enabled else "no", _when(h.last_heartbeat)]
                for h in s.scalars(select(Host).order_by(Host.name))]
    return _render(request, "Hosts", ["Host", "Arches", "Capacity", "Enabled", "Last heartbeat"], rows)
