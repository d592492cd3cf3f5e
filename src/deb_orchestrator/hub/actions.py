"""The changes an operator makes, shared by the API routes and the web pages' forms: cancel a task or a build,
resubmit a build, tag and untag it, enable or disable a builder host. Each checks the caller's right to act on
the object (the token's scope was checked by ``auth.require`` or the web session's guard), changes it in one
transaction with its audit record (``who``: the request's :class:`audit.Actor`, ``via`` api or web), and wakes
what must react (the scheduler, the repository publisher)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from deb_orchestrator.hub import audit, builds, events
from deb_orchestrator.hub.api.common import build_json, host_json, task_json
from deb_orchestrator.hub.auth import Principal
from deb_orchestrator.hub.errors import HubError, NotFound
from deb_orchestrator.hub.models import Build, Host
from deb_orchestrator.hub.service import Hub


def owned(who: Principal, b: Build, action: str) -> None:
    """Users with the build scope act on their own builds only; admins on any."""
    if not who.has("admin") and b.owner != who.user:
        raise HubError(f"build {b.ident} belongs to {b.owner}; {who.user} may {action} only their own builds "
                       "(admins may any)", 403)


def cancel_task(hub: Hub, who: Principal, actor: audit.Actor, task_id: int) -> dict[str, Any]:
    with hub.db.session() as s:
        task = builds.get_task(s, task_id)
        build = s.get(Build, task.build_id) if task.build_id is not None else None
        owner = build.owner if build is not None else task.owner
        if not who.has("admin") and owner != who.user:
            raise HubError(f"task {task_id} belongs to {owner}; {who.user} may cancel only their own tasks "
                           "(admins may any)", 403)
        was = task.state
        canceled = builds.cancel_task(s, task, who.user)
        audit.record(s, actor, "task", task.id, None,
                     {**audit.changed({"state": was}, {"state": task.state}), "canceled_tasks": [None, canceled]})
        return {"canceled_tasks": canceled}


def cancel_build(hub: Hub, who: Principal, actor: audit.Actor, ref: str) -> dict[str, Any]:
    with hub.db.session() as s:
        b = builds.get_build(s, ref)
        owned(who, b, "cancel")
        task = builds.get_task(s, b.task_id or 0)
        was = b.state
        canceled = builds.cancel_task(s, task, who.user)
        audit.record(s, actor, "build", b.id, b.ident,
                     {**audit.changed({"state": was}, {"state": b.state}), "canceled_tasks": [None, canceled]})
        return {"build": b.ident, "canceled_tasks": canceled}


def resubmit_build(hub: Hub, who: Principal, actor: audit.Actor, ref: str) -> dict[str, Any]:
    with hub.db.session() as s:
        b = builds.get_build(s, ref)
        owned(who, b, "resubmit")
        was = {"state": b.state, "task": b.task_id}
        task = builds.resubmit(s, b, who.user, hub.settings.max_attempts)
        audit.record(s, actor, "build", b.id, b.ident, audit.changed(was, {"state": b.state, "task": task.id}))
        out = {"build": build_json(s, b), "task": task_json(task)}
    hub.work.notify()
    return out


def tag_build(hub: Hub, who: Principal, actor: audit.Actor, tag_name: str, ref: str) -> dict[str, Any]:
    with hub.db.session() as s:
        tag = builds.get_tag(s, tag_name)
        build = builds.get_build(s, ref)
        builds.tag_build(s, tag, build, who.user)
        audit.record(s, actor, "build", build.id, build.ident, {"tags": [None, tag.name]})
        out = {"tag": tag.name, "build": build.ident}
    hub.repos_dirty()
    return out


def untag_build(hub: Hub, who: Principal, actor: audit.Actor, tag_name: str, ref: str) -> dict[str, Any]:
    with hub.db.session() as s:
        tag = builds.get_tag(s, tag_name)
        b = builds.get_build(s, ref)
        builds.untag_build(s, tag, b, who.user)
        audit.record(s, actor, "build", b.id, b.ident, {"tags": [tag.name, None]})
        out = {"tag": tag.name, "build": b.ident}
    hub.repos_dirty()
    return out


def edit_host(hub: Hub, who: Principal, actor: audit.Actor, name: str, *, enabled: bool | None = None,
              capacity: int | None = None) -> dict[str, Any]:
    with hub.db.session() as s:
        host = s.scalar(select(Host).where(Host.name == name))
        if host is None:
            raise NotFound(f"no host {name!r}; list them with list-hosts")
        old = {"enabled": host.enabled, "capacity": host.capacity}
        if enabled is not None:
            host.enabled = enabled
        if capacity is not None:
            host.capacity = capacity
        events.record(s, "host.edited", "host", host.id, who.user, enabled=host.enabled, capacity=host.capacity)
        audit.record(s, actor, "host", host.id, host.name,
                     audit.changed(old, {"enabled": host.enabled, "capacity": host.capacity}))
        out = host_json(s, host)
    if enabled:
        hub.work.notify()
    return out
