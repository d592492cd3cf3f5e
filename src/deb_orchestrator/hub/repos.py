"""Tag repositories: one signed apt repository per tag under DATA/repos/<tag>, served at /repos/<tag>/.

Changes mark a tag's repo (and those of the tags inheriting from it) dirty; a publisher thread writes a
new generation from the stanzas kept in the database (no .deb is read again), hard-links pool files
from the artifact store, and switches ``dists/<tag>`` atomically (debarchive.aptrepo.publish). After
each publication, dep-waiting builds whose build tag sees this repo are requeued when a package they
miss appeared.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
import uuid
from pathlib import Path

from debian.deb822 import Deb822, PkgRelation
from sqlalchemy import select
from sqlalchemy.orm import Session

from deb_orchestrator.hub import builds, events
from deb_orchestrator.hub.db import Database
from deb_orchestrator.hub.metrics import HubMetrics
from deb_orchestrator.hub.models import Artifact, BinaryPackage, Build, Repo, Tag, Target, Task
from deb_orchestrator.hub.notify import Signal
from deb_orchestrator.hub.plugins.hooks import hooks_of
from deb_orchestrator.hub.store import Store
from deb_orchestrator.states import RepoState, TaskState
from debarchive import aptrepo
from debarchive.signing import SigningKey

log = logging.getLogger("deb_orchestrator.hub.repos")


class RepoPublisher:
    def __init__(self, db: Database, store: Store, root: Path, key: SigningKey | None, origin: str,
                 work: Signal, changed: Signal, metrics: HubMetrics) -> None:
        self.db = db
        self.store = store
        self.root = root
        self.key = key
        self.origin = origin
        self.work = work  # notified when dep-wait tasks are requeued
        self.changed = changed  # notified after every publication
        self.metrics = metrics
        self.wakeup = Signal()
        self.lock = threading.Lock()  # held while a repo is written or removed
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        root.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ thread
    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="repo-publisher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.wakeup.notify()
        if self._thread is not None:
            self._thread.join(timeout=60)

    def _loop(self) -> None:
        while not self._stop.is_set():
            seen = self.wakeup.generation
            try:
                did = self.publish_dirty()
            except Exception:  # keep the thread alive; the failure is recorded on the repo
                log.exception("publishing repositories failed")
                did = 0
            if not did:
                self.wakeup.wait_sync(seen, 1.0)

    # ------------------------------------------------------------------ work
    def publish_dirty(self) -> int:
        with self.db.session() as s:
            dirty = [(r.id, r.tag_id) for r in s.scalars(select(Repo).where(Repo.dirty.is_(True)).order_by(Repo.id))]
        done = 0
        for repo_id, tag_id in dirty:
            if self._stop.is_set():  # stopping (SIGTERM): the rest stay dirty; the next start publishes them
                break
            self.publish(repo_id, tag_id)
            done += 1
        return done

    def publish(self, repo_id: int, tag_id: int) -> None:
        with self.lock:
            self._publish(repo_id, tag_id)

    def remove(self, tag_name: str) -> bool:
        """Take a deleted tag's repository off the web at once (one rename), then delete its files.

        Call it after the tag's rows are gone: a publication waiting for the lock then finds no tag.
        Returns whether there was a repository."""
        with self.lock:
            root = self.root / tag_name
            if not root.exists():
                return False
            graveyard = self.root / f".deleted-{tag_name}-{uuid.uuid4().hex[:8]}"
            os.rename(root, graveyard)
        shutil.rmtree(graveyard, ignore_errors=True)
        return True

    def _publish(self, repo_id: int, tag_id: int) -> None:
        started = time.monotonic()
        with self.db.session() as s:
            repo = s.get(Repo, repo_id)
            tag = s.get(Tag, tag_id)
            if repo is None or tag is None:
                return
            repo.dirty = False  # a change from now on marks it again
            tag_name, arches = tag.name, tag.arches.split()
            visible = builds.tagged_builds(s, tag_id, inherit=True)
            build_ids = [b.id for b, _ in visible]
            bins = list(s.scalars(select(BinaryPackage).where(BinaryPackage.build_id.in_(build_ids))))
            pkgs = [(b.stanza, b.filename, b.sha256) for b in bins]
            srcs = [(b.source_stanza, b.id, b.source) for b, _ in visible if b.source_stanza]
            src_files = {
                bid: [(a.name, a.sha256) for a in s.scalars(select(Artifact).where(
                    Artifact.build_id == bid, Artifact.kind == "source"))]
                for bid in build_ids
            }
        root = self.root / tag_name
        try:
            entries = []
            for stanza, filename, sha in pkgs:
                aptrepo.add_to_pool(root, self.store.path(sha), filename)
                entries.append(aptrepo.PackageEntry.from_stanza(stanza))
            sources = []
            for stanza, bid, source in srcs:
                for name, sha in src_files.get(bid, []):
                    aptrepo.add_to_pool(root, self.store.path(sha), aptrepo.pool_path(source, name))
                sources.append(aptrepo.SourceEntry.from_stanza(stanza))
            if self.key is not None and not (root / "key.asc").is_file():
                self.key.export_public(root / "key.asc")
            aptrepo.publish(root, tag_name, packages=entries, sources=sources, arches=arches or ["amd64"],
                            key=self.key, origin=self.origin, label=f"{self.origin} {tag_name}",
                            description=f"deb-orchestrator tag {tag_name}")
            self._prune_pool(root, {f for _, f, _ in pkgs} | {
                aptrepo.pool_path(src, n) for _, bid, src in srcs for n, _ in src_files.get(bid, [])})
        except Exception as exc:
            with self.db.session() as s:
                repo = s.get(Repo, repo_id)
                if repo is not None:
                    repo.state = RepoState.FAILED
                    repo.error = str(exc)
                    events.record(s, "repo.failed", "repo", repo_id, "hub", tag=tag_name, error=str(exc))
            log.exception("publishing %s failed", tag_name)
            self.metrics.repo_publish.labels("failed").observe(time.monotonic() - started)
            self.changed.notify()
            return
        seconds = time.monotonic() - started
        self.metrics.repo_publish.labels("success").observe(seconds)
        with self.db.session() as s:
            repo = s.get(Repo, repo_id)
            if repo is None:
                return
            repo.generation += 1
            repo.state = RepoState.READY
            repo.error = None
            repo.build_ids = build_ids
            repo.package_count = len(pkgs)
            repo.published = time.time()
            repo.seconds = seconds
            events.record(s, "repo.published", "repo", repo_id, "hub", tag=tag_name, generation=repo.generation,
                          packages=len(pkgs), seconds=round(seconds, 3))
            hooks_of(s).repo_published(s, tag_name, repo.generation, len(pkgs), build_ids)
            provided = _provided_names([p[0] for p in pkgs])
            requeued = release_dep_waits(s, self.store, tag_id, provided)
        self.changed.notify()
        if requeued:
            self.work.notify()

    @staticmethod
    def _prune_pool(root: Path, keep: set[str]) -> None:
        pool = root / "pool"
        if not pool.is_dir():
            return
        for path in pool.rglob("*"):
            if path.is_file() and str(path.relative_to(root)) not in keep:
                path.unlink(missing_ok=True)


def _provided_names(stanzas: list[str]) -> set[str]:
    names: set[str] = set()
    for text in stanzas:
        para = Deb822(text)
        names.add(para.get("Package", ""))
        for group in PkgRelation.parse_relations(para.get("Provides", "")) if para.get("Provides") else []:
            for alt in group:
                names.add(alt["name"])
    return names


def release_dep_waits(session: Session, store: Store, tag_id: int, provided: set[str]) -> list[int]:
    """Requeue dep-waiting tasks whose build tag is ``tag_id`` when a package they miss is now provided."""
    waiting = session.execute(
        select(Task, Build)
        .join(Build, Task.build_id == Build.id)
        .join(Target, Build.target_id == Target.id)
        .where(Task.state == TaskState.DEP_WAIT, Target.build_tag_id == tag_id)
    ).all()
    requeued = []
    for task, build in waiting:
        wanted = {p for m in (task.missing or []) for p in m.get("packages", [])}
        if wanted and not (wanted & provided):
            continue
        task.state = TaskState.FREE
        task.host_id = None
        task.lease_expires = None
        task.attempts = 0
        requeued.append(task.id)
        events.record(session, "task.requeued", "task", task.id, "hub", reason="dep-wait may be satisfied",
                      provided=sorted(wanted & provided))
        if build.task_id is not None and (parent := session.get(Task, build.task_id)) is not None:
            builds.finish_parent(session, store, parent)
    return requeued


def repo_info(session: Session, tag: Tag) -> dict[str, object]:
    repo = session.scalar(select(Repo).where(Repo.tag_id == tag.id))
    if repo is None:
        return {"tag": tag.name, "generation": 0, "state": RepoState.PENDING, "dirty": True, "builds": [],
                "packages": 0, "published": None, "seconds": None, "error": None}
    idents = [b.ident for b in session.scalars(select(Build).where(Build.id.in_(repo.build_ids or [])))]
    return {"tag": tag.name, "generation": repo.generation, "state": repo.state, "dirty": repo.dirty,
            "builds": sorted(idents), "packages": repo.package_count, "published": repo.published,
            "seconds": repo.seconds, "error": repo.error}
