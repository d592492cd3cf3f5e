"""Builder hosts: registration (with their token), enable/disable, capacity."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy import select

from deb_orchestrator.hub import actions, audit, auth, events
from deb_orchestrator.hub.api.common import host_json, hub_of
from deb_orchestrator.hub.auth import Principal, require
from deb_orchestrator.hub.errors import Conflict, NotFound
from deb_orchestrator.hub.models import Host
from deb_orchestrator.states import AuditAction
from deb_orchestrator.wire import HostCreated, HostIn, HostOut, HostUpdate

router = APIRouter(prefix="/hosts", tags=["hosts"])


@router.get("", summary="List builder hosts", response_model=list[HostOut])
def list_hosts(request: Request) -> list[dict[str, Any]]:
    with hub_of(request).db.session() as s:
        return [host_json(s, h) for h in s.scalars(select(Host).order_by(Host.name))]


@router.post("", status_code=201, summary="Register a host; the answer holds its builder token (scope admin)",
             response_model=HostCreated)
def add_host(body: HostIn, request: Request,
             who: Principal = Depends(require("admin", AuditAction.HOST_CREATE))) -> dict[str, Any]:
    with hub_of(request).db.session() as s:
        if s.scalar(select(Host).where(Host.name == body.name)) is not None:
            raise Conflict(f"host {body.name} exists already")
        host = Host(name=body.name, arches=" ".join(body.arches), capacity=body.capacity)
        s.add(host)
        s.flush()
        secret, tok = auth.issue_token(s, f"host/{body.name}", ["builder"], name=f"builder {body.name}",
                                       host_id=host.id)
        events.record(s, "host.created", "host", host.id, who.user, arches=body.arches)
        audit.record(s, audit.actor(request), "host", host.id, host.name,
                     audit.created(arches=body.arches, capacity=body.capacity, enabled=True, token_id=tok.id))
        return {**host_json(s, host), "token": secret}


@router.get("/{name}", summary="Show a host", response_model=HostOut)
def get_host(name: str, request: Request) -> dict[str, Any]:
    with hub_of(request).db.session() as s:
        host = s.scalar(select(Host).where(Host.name == name))
        if host is None:
            raise NotFound(f"no host {name!r}; list them with list-hosts")
        return host_json(s, host)


@router.patch("/{name}", summary="Enable, disable or resize a host (scope admin)", response_model=HostOut)
def edit_host(name: str, body: HostUpdate, request: Request,
              who: Principal = Depends(require("admin", AuditAction.HOST_EDIT))) -> dict[str, Any]:
    return actions.edit_host(hub_of(request), who, audit.actor(request), name, enabled=body.enabled,
                             capacity=body.capacity)
