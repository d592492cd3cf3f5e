"""Binary packages of completed builds: scanned once (when the build completes), stanzas kept in the DB."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from deb_orchestrator.hub.errors import HubError
from deb_orchestrator.hub.models import Artifact, BinaryPackage, Build, Task
from deb_orchestrator.hub.store import Store
from debarchive import aptrepo


def current_debs(session: Session, build: Build) -> list[Artifact]:
    """The .deb artifacts uploaded by the closed buildArch tasks of the build's current task tree."""
    task_ids = [
        t
        for t in session.scalars(
            select(Task.id).where(Task.parent_id == build.task_id, Task.method == "buildArch", Task.state == "closed")
        )
    ]
    if not task_ids:
        return []
    return list(
        session.scalars(
            select(Artifact).where(
                Artifact.build_id == build.id, Artifact.task_id.in_(task_ids), Artifact.kind == "deb"
            )
        )
    )


def register_binaries(session: Session, store: Store, build: Build) -> list[BinaryPackage]:
    """Scan the build's .debs and store their Packages stanzas (Filename = pool path)."""
    rows: list[BinaryPackage] = []
    seen: set[str] = set()
    for art in current_debs(session, build):
        if art.name in seen:  # arch:all built once, but be safe if two tasks uploaded the same file
            continue
        seen.add(art.name)
        try:
            entry = aptrepo.scan_deb(store.path(art.sha256), aptrepo.pool_path(build.source, art.name))
        except aptrepo.RepoError as exc:
            raise HubError(f"build {build.ident}: uploaded {art.name} is not a usable .deb: {exc}") from exc
        if entry.source != build.source:
            raise HubError(f"build {build.ident}: {art.name} belongs to source {entry.source}, not {build.source}")
        row = BinaryPackage(build_id=build.id, name=entry.name, version=entry.version, arch=entry.arch,
                            filename=entry.filename, sha256=entry.sha256, size=entry.size, stanza=entry.stanza)
        session.add(row)
        rows.append(row)
    return rows
