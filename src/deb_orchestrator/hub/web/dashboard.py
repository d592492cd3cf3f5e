"""The dashboard: the queue by state and architecture, running tasks, builders with their load and heartbeat
age, recent failures; a fixed number of queries, each bounded."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from deb_orchestrator.hub.models import Build, Host, Task
from deb_orchestrator.hub.web.render import page
from deb_orchestrator.states import BuildState, TaskState

router = APIRouter(include_in_schema=False)
SHOWN = 20  # rows of each part; the lists behind its links page through the rest
HOSTS_SHOWN = 100


@router.get("/dashboard", response_class=HTMLResponse)
def dashboard(request: Request) -> HTMLResponse:
    hub = request.app.state.hub
    with hub.db.session() as s:
        counts = s.execute(select(Task.arch, Task.state, func.count(Task.id))
                           .where(Task.method != "build").group_by(Task.arch, Task.state)).all()
        states = [st for st in TaskState if any(c.state == st for c in counts)]
        queue: dict[str, dict[str, int]] = {}
        for arch, state, n in counts:
            queue.setdefault(arch or "(none)", {})[state] = n
        running = list(s.scalars(select(Task).options(selectinload(Task.host))
                                 .where(Task.state == TaskState.OPEN, Task.method != "build")
                                 .order_by(Task.started.desc(), Task.id.desc()).limit(SHOWN)))
        running_total = sum(n for _, st, n in counts if st == TaskState.OPEN)
        hosts = list(s.scalars(select(Host).order_by(Host.name).limit(HOSTS_SHOWN + 1)))
        load = dict(s.execute(select(Task.host_id, func.count(Task.id)).where(
            Task.state == TaskState.OPEN, Task.host_id.in_([h.id for h in hosts])).group_by(Task.host_id))
            .all())
        failed_builds = list(s.scalars(select(Build).where(Build.state == BuildState.FAILED)
                                       .order_by(Build.completed.desc(), Build.id.desc()).limit(SHOWN)))
        failed_tasks = list(s.scalars(select(Task).options(selectinload(Task.host))
                                      .where(Task.state == TaskState.FAILED, Task.method != "build")
                                      .order_by(Task.completed.desc(), Task.id.desc()).limit(SHOWN)))
        return page(request, "dashboard.html", "Dashboard", s=s, states=states, queue=sorted(queue.items()),
                    running=running, running_total=running_total, hosts=hosts[:HOSTS_SHOWN],
                    more_hosts=len(hosts) > HOSTS_SHOWN, load=load, lease=hub.settings.lease_seconds,
                    failed_builds=failed_builds, failed_tasks=failed_tasks, now=time.time())
