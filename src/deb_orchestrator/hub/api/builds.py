"""Builds: submit (by URL or upload), look up by SOURCE_VERSION or ID, files and logs, cancel, resubmit."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from pydantic import RootModel, ValidationError
from sqlalchemy import select

from deb_orchestrator.hub import actions, audit, builds, inheritance, packages, sources
from deb_orchestrator.hub.api.common import build_json, file_response, hub_of, task_json
from deb_orchestrator.hub.auth import Principal, require
from deb_orchestrator.hub.errors import Conflict, HubError, NotFound
from deb_orchestrator.hub.models import Artifact, BinaryPackage, Build, Task
from deb_orchestrator.hub.service import Hub
from deb_orchestrator.states import AuditAction, BuildState
from deb_orchestrator.wire import BuildCancelOut, BuildDetail, BuildIn, BuildOut, ResubmitOut, SubmitOut
from deb_orchestrator.wire.plugins import PluginMap
from debarchive import dsc
from debarchive.sourceauth import Verification

router = APIRouter(prefix="/builds", tags=["builds"])
BuildPlugins = RootModel[PluginMap]

def _submit(hub: Hub, pkg: dsc.SourcePackage, target: str, who: audit.Actor, requested_by: str,
            arches: list[str] | None, priority: int, verification: Verification,
            plugins: dict[str, dict[str, Any]]) -> dict[str, Any]:
    with hub.db.session() as s:
        sub = builds.submit(s, hub.store, pkg, target, who.user or "", requested_by=requested_by, arches=arches,
                            priority=priority, max_attempts=hub.settings.max_attempts, verification=verification,
                            plugins=plugins)
        b = sub.build
        audit.record(s, who, "build", b.id, b.ident, {} if sub.existing else audit.created(
            state=b.state, target=target, task=sub.task.id, arches=[t.arch for t in builds.children(s, sub.task.id)],
            priority=priority, requested_by=b.requested_by, source_trust=b.source_trust,
            **({"plugins": b.plugins} if b.plugins else {}),
            **({"disable_plugins": b.disable_plugins} if b.disable_plugins else {})))
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


def _origins(hub: Hub, target: str, plugins: dict[str, dict[str, Any]]
             ) -> tuple[frozenset[str], list[sources.ExternalOrigin]]:
    """Where this target's sources may come from (the hosts of its tags' external repos, and the extras), and
    the external repos that may vouch for them."""
    with hub.db.session() as s:
        t = builds.get_target(s, target)  # fail fast before downloading
        builds.plugins_for(t, plugins)
        repos = [e for tag in (t.build_tag, t.dest_tag) for e in inheritance.external_repos(s, tag.id)]
        origins = [sources.ExternalOrigin(e.url, e.suite, tuple(e.components.split()), e.key) for e in repos]
    return sources.allowed_hosts([o.url for o in origins], hub.settings.allow_source_hosts), origins


@router.post("", status_code=201, summary="Submit a build of a .dsc URL (scope build)",
             description="The hub fetches the .dsc and its files only from hosts on its allow-list (the hosts of "
                         "the target's external repositories and `hub --allow-source-host`; 403 otherwise, nothing "
                         "fetched), following redirects only to such hosts, within size and time limits (413, "
                         "504), in a small pool of its own (503 when it is full). The .dsc must be authenticated "
                         "before its files are fetched: listed with its checksum in a Sources index of its mirror "
                         "whose InRelease is signed by a key of the target's external repositories (Debian's "
                         "archive keyring for those without a key), in their suites or a sibling Debian release, "
                         "or signed by a key in `hub --source-keyring`; 422 otherwise, nothing stored (upload it "
                         "instead, or run the hub with `--no-verify-source`). The build records how: "
                         "`source_trust` (archive, signature, caller for uploads, none) and "
                         "`source_verification`.", response_model=SubmitOut)
async def submit_url(body: BuildIn, request: Request,
                     who: Principal = Depends(require("build", AuditAction.BUILD_SUBMIT))) -> dict[str, Any]:
    hub = hub_of(request)
    sources.split_url(body.source_url)  # 400 for a URL that cannot be parsed
    allowed, origins = await run_in_threadpool(_origins, hub, body.target, body.plugins)
    tmp = Path(await run_in_threadpool(tempfile.mkdtemp, "", "fetch-", hub.store.root / "tmp"))
    try:
        pkg, verification = await hub.fetcher.fetch(body.source_url, allowed, tmp, origins)
        return await run_in_threadpool(_submit, hub, pkg, body.target, audit.actor(request),
                                       body.requested_by or body.source_url,
                                       body.arches, body.priority, verification, body.plugins)
    finally:
        await run_in_threadpool(shutil.rmtree, tmp, True)


@router.post("/upload", status_code=201, summary="Submit a build by uploading a .dsc and its files (scope build)",
             response_model=SubmitOut)
def submit_upload(
    request: Request,
    target: Annotated[str, Form(max_length=100)],
    files: Annotated[list[UploadFile], File(description="the .dsc and every file it names")],
    arches: Annotated[str, Form(max_length=200, description="space separated; empty: all")] = "",
    priority: Annotated[int, Form(ge=0, le=1000)] = 20,
    requested_by: Annotated[str, Form(max_length=300, description="who asked for it; default: upload:NAME.dsc")] = "",
    plugins: Annotated[str, Form(max_length=20_000, description="JSON: deb-mock plugins to add, as in the "
                                                                "URL submission's plugins")] = "{}",
    who: Principal = Depends(require("build", AuditAction.BUILD_SUBMIT)),
) -> dict[str, Any]:
    hub = hub_of(request)
    wanted = _plugins_form(plugins)
    with hub.db.session() as s:
        builds.plugins_for(builds.get_target(s, target), wanted)
    limit = hub.settings.max_upload_bytes
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
            if (incoming / name).exists():
                raise HubError(f"{name} uploaded twice")
            with (incoming / name).open("wb") as out:
                while block := up.file.read(1 << 20):
                    total += len(block)
                    if total > limit:
                        raise HubError(f"the upload is larger than the hub's limit of {packages.mib(limit)}", 413)
                    out.write(block)
            if name.endswith(".dsc"):
                dscs.append(name)
        if len(dscs) != 1:
            raise HubError(f"upload exactly one .dsc with its files (got {len(dscs)} .dsc files)")
        pkg = sources.load(incoming / dscs[0])
        names = " ".join(a for a in arches.split() if a) or None
        how = Verification(True, "caller", f"uploaded by {who.user} (a token holder's own source)")
        return _submit(hub, pkg, target, audit.actor(request), requested_by or f"upload:{dscs[0]}",
                       names.split() if names else None, priority, how, wanted)


def _plugins_form(text: str) -> dict[str, dict[str, Any]]:
    try:
        return BuildPlugins.model_validate_json(text).root
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise HubError(f"plugins: {problems}") from None


@router.get("", summary="List builds (newest first)", response_model=list[BuildOut])
def list_builds(request: Request, state: str | None = None, source: str | None = None,
                limit: int = 100) -> list[dict[str, Any]]:
    with hub_of(request).db.session() as s:
        q = select(Build).order_by(Build.id.desc()).limit(max(1, min(limit, 1000)))
        if state:
            q = q.where(Build.state == state)
        if source:
            q = q.where(Build.source == source)
        return [build_json(s, b) for b in s.scalars(q)]


@router.get("/{ref}", summary="Show a build (SOURCE_VERSION or ID): tasks, files, packages", response_model=BuildDetail)
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
            "plugins": b.plugins or {},
            "disable_plugins": b.disable_plugins or [],
            "plugin_results": {str(t.id): t.plugins for t in tasks if t.method == "buildArch" and t.plugins},
        }


@router.get("/{ref}/files/{name}", summary="Download a file of a build (source, .deb, log…)",
            description="The build's source files first; otherwise the file of that name uploaded by one of the "
                        "build's tasks (give `task` when several tasks uploaded one: 409 otherwise). Never a file "
                        "of another build, never a builder's upload in place of a source file.")
def download(ref: str, name: str, request: Request, task: int | None = None) -> FileResponse:
    hub = hub_of(request)
    with hub.db.session() as s:
        b = builds.get_build(s, ref)
        q = select(Artifact).where(Artifact.build_id == b.id, Artifact.name == name)
        if task is not None:
            found = list(s.scalars(q.where(Artifact.task_id == task)))
        else:
            found = list(s.scalars(q.where(Artifact.task_id.is_(None)))) or list(s.scalars(q.order_by(Artifact.id)))
        if not found and b.state == BuildState.DELETED:
            raise HubError(builds.deleted_message(b, "downloaded"), 410)
        if not found:
            raise NotFound(f"build {b.ident} has no file {name!r}" + (f" from task {task}" if task is not None else ""))
        if len({a.task_id for a in found}) > 1:
            tasks = ", ".join(str(a.task_id) for a in found)
            raise Conflict(f"build {b.ident}: tasks {tasks} each uploaded {name!r}; name one with ?task=ID")
        sha = found[0].sha256
    return file_response(hub.store.path(sha), name)


@router.post("/{ref}/cancel", summary="Cancel a build (scope build; your own builds, admins any)",
             response_model=BuildCancelOut)
def cancel(ref: str, request: Request,
           who: Principal = Depends(require("build", AuditAction.BUILD_CANCEL))) -> dict[str, Any]:
    return actions.cancel_build(hub_of(request), who, audit.actor(request), ref)


@router.post("/{ref}/resubmit",
             summary="Build a failed, canceled or dep-waiting build again (scope build; your own builds, admins any)",
             response_model=ResubmitOut)
def resubmit(ref: str, request: Request,
             who: Principal = Depends(require("build", AuditAction.BUILD_RESUBMIT))) -> dict[str, Any]:
    return actions.resubmit_build(hub_of(request), who, audit.actor(request), ref)
