"""Builds: submit (by URL or upload), look up by SOURCE_VERSION or ID, files and logs, cancel, resubmit."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import FileResponse
from sqlalchemy import select

from deb_orchestrator.hub import builds
from deb_orchestrator.hub.api.common import build_json, hub_of, task_json
from deb_orchestrator.hub.auth import Principal, require
from deb_orchestrator.hub.errors import HubError, NotFound
from deb_orchestrator.hub.models import Artifact, BinaryPackage, Build, Task
from deb_orchestrator.hub.schemas import BuildIn
from deb_orchestrator.hub.service import Hub
from debarchive import dsc

router = APIRouter(prefix="/builds", tags=["builds"])

MAX_UPLOAD = 2 << 30


def _submit(hub: Hub, pkg: dsc.SourcePackage, target: str, who: Principal, requested_by: str,
            arches: list[str] | None, priority: int) -> dict[str, Any]:
    with hub.db.session() as s:
        sub = builds.submit(s, hub.store, pkg, target, who.user, requested_by=requested_by, arches=arches,
                            priority=priority, max_attempts=hub.settings.max_attempts)
        out = {
            "existing": sub.existing,
            "message": (f"{pkg.ident} was submitted before: build {sub.build.id} ({sub.build.state}), task "
                        f"{sub.task.id}" if sub.existing else f"created build {sub.build.id}, task {sub.task.id}"),
            "build": build_json(s, sub.build),
            "task": task_json(sub.task),
        }
    if not sub.existing:
        hub.work.notify()
    return out


def _fetch(ref: str | Path, dest: Path) -> dsc.SourcePackage:
    try:
        return dsc.fetch(ref, dest)
    except dsc.SourceFetchError as exc:
        raise HubError(f"{exc} (url: {exc.url})", 502 if exc.network else 400) from None
    except dsc.SourcePackageError as exc:
        raise HubError(f"bad source package: {exc}", 400) from None


@router.post("", status_code=201, summary="Submit a build of a .dsc URL (scope build)")
def submit_url(body: BuildIn, request: Request, who: Principal = Depends(require("build"))) -> dict[str, Any]:
    hub = hub_of(request)
    with hub.db.session() as s:
        builds.get_target(s, body.target)  # fail fast before downloading
    with tempfile.TemporaryDirectory(dir=hub.store.root / "tmp") as tmp:
        pkg = _fetch(body.source_url, Path(tmp))
        return _submit(hub, pkg, body.target, who, body.requested_by or body.source_url, body.arches, body.priority)


@router.post("/upload", status_code=201, summary="Submit a build by uploading a .dsc and its files (scope build)")
def submit_upload(
    request: Request,
    target: Annotated[str, Form(max_length=100)],
    files: Annotated[list[UploadFile], File(description="the .dsc and every file it names")],
    arches: Annotated[str, Form(max_length=200, description="space separated; empty: all")] = "",
    priority: Annotated[int, Form(ge=0, le=1000)] = 20,
    requested_by: Annotated[str, Form(max_length=300, description="who asked for it; default: upload:NAME.dsc")] = "",
    who: Principal = Depends(require("build")),
) -> dict[str, Any]:
    hub = hub_of(request)
    with hub.db.session() as s:
        builds.get_target(s, target)
    with tempfile.TemporaryDirectory(dir=hub.store.root / "tmp") as tmp:
        incoming = Path(tmp) / "in"
        incoming.mkdir()
        dscs = []
        total = 0
        for up in files:
            try:
                name = dsc.safe_name(up.filename or "", "uploaded file name")
            except dsc.SourcePackageError as exc:
                raise HubError(f"{exc}; upload plain file names only") from None
            with (incoming / name).open("wb") as out:
                shutil.copyfileobj(up.file, out, 1 << 20)
                total += out.tell()
            if total > MAX_UPLOAD:
                raise HubError("upload larger than 2 GiB", 413)
            if name.endswith(".dsc"):
                dscs.append(name)
        if len(dscs) != 1:
            raise HubError(f"upload exactly one .dsc with its files (got {len(dscs)} .dsc files)")
        pkg = _fetch(incoming / dscs[0], Path(tmp) / "verified")
        names = " ".join(a for a in arches.split() if a) or None
        return _submit(hub, pkg, target, who, requested_by or f"upload:{dscs[0]}", names.split() if names else None,
                       priority)


@router.get("", summary="List builds (newest first)")
def list_builds(request: Request, state: str | None = None, source: str | None = None,
                limit: int = 100) -> list[dict[str, Any]]:
    with hub_of(request).db.session() as s:
        q = select(Build).order_by(Build.id.desc()).limit(max(1, min(limit, 1000)))
        if state:
            q = q.where(Build.state == state)
        if source:
            q = q.where(Build.source == source)
        return [build_json(s, b) for b in s.scalars(q)]


@router.get("/{ref}", summary="Show a build (SOURCE_VERSION or ID): tasks, files, packages")
def get_build(ref: str, request: Request) -> dict[str, Any]:
    with hub_of(request).db.session() as s:
        b = builds.get_build(s, ref)
        tasks = list(s.scalars(select(Task).where(Task.build_id == b.id).order_by(Task.id)))
        files = list(s.scalars(select(Artifact).where(Artifact.build_id == b.id).order_by(Artifact.id)))
        pkgs = list(s.scalars(select(BinaryPackage).where(BinaryPackage.build_id == b.id)))
        return {
            **build_json(s, b),
            "tasks": [task_json(t) for t in tasks],
            "files": [{"name": f.name, "kind": f.kind, "sha256": f.sha256, "size": f.size, "task_id": f.task_id}
                      for f in files],
            "packages": [{"name": p.name, "version": p.version, "arch": p.arch, "filename": p.filename}
                         for p in pkgs],
            "buildroots": {str(t.id): t.buildroot or [] for t in tasks if t.method == "buildArch"},
        }


@router.get("/{ref}/files/{name}", summary="Download a file of a build (source, .deb, log…)")
def download(ref: str, name: str, request: Request, task: int | None = None) -> FileResponse:
    hub = hub_of(request)
    with hub.db.session() as s:
        b = builds.get_build(s, ref)
        q = select(Artifact).where(Artifact.build_id == b.id, Artifact.name == name)
        if task is not None:
            q = q.where(Artifact.task_id == task)
        art = s.scalars(q.order_by(Artifact.id.desc())).first()
        if art is None:
            raise NotFound(f"build {b.ident} has no file {name!r}")
        sha = art.sha256
    return FileResponse(hub.store.path(sha), filename=name, media_type="application/octet-stream")


@router.post("/{ref}/cancel", summary="Cancel a build (scope build)")
def cancel(ref: str, request: Request, who: Principal = Depends(require("build"))) -> dict[str, Any]:
    with hub_of(request).db.session() as s:
        b = builds.get_build(s, ref)
        task = builds.get_task(s, b.task_id or 0)
        return {"build": b.ident, "canceled_tasks": builds.cancel_task(s, task, who.user)}


@router.post("/{ref}/resubmit", summary="Build a failed, canceled or dep-waiting build again (scope build)")
def resubmit(ref: str, request: Request, who: Principal = Depends(require("build"))) -> dict[str, Any]:
    hub = hub_of(request)
    with hub.db.session() as s:
        b = builds.get_build(s, ref)
        task = builds.resubmit(s, b, who.user, hub.settings.max_attempts)
        out = {"build": build_json(s, b), "task": task_json(task)}
    hub.work.notify()
    return out
