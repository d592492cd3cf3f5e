"""Builds: submission (build identity), the task tree, completion, cancel, resubmit and tagging."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from deb_orchestrator.hub import buildplugins, events, inheritance
from deb_orchestrator.hub.errors import Conflict, HubError, NotFound, PolicyRefused
from deb_orchestrator.hub.models import Artifact, Build, Repo, Tag, TagListing, Target, Task
from deb_orchestrator.hub.plugins.hooks import hooks_of
from deb_orchestrator.hub.store import Store
from deb_orchestrator.states import (
    ACTIVE_BUILD_STATES,
    ACTIVE_TASK_STATES,
    BuildState,
    RepoState,
    TaskMethod,
    TaskState,
)
from debarchive import aptrepo
from debarchive.dsc import SourcePackage
from debarchive.sourceauth import Verification

BUILD_ACTIVE = ACTIVE_BUILD_STATES
TASK_ACTIVE = ACTIVE_TASK_STATES


@dataclass
class Submitted:
    build: Build
    task: Task
    existing: bool


def get_target(session: Session, name: str) -> Target:
    target = session.scalar(select(Target).where(Target.name == name))
    if target is None:
        known = ", ".join(session.scalars(select(Target.name).order_by(Target.name))) or "none yet"
        raise NotFound(f"unknown target {name!r} (known targets: {known}; create one with add-target)")
    return target


def get_tag(session: Session, name: str) -> Tag:
    tag = session.scalar(select(Tag).where(Tag.name == name))
    if tag is None:
        raise NotFound(f"unknown tag {name!r}; list tags with list-tags, create one with add-tag")
    return tag


def get_build(session: Session, ref: str | int) -> Build:
    """A build by numeric ID or by ``SOURCE_VERSION``."""
    text = str(ref)
    if text.isdigit():
        build = session.get(Build, int(text)) if int(text) < 2**31 else None
    else:
        build = session.scalar(select(Build).where(Build.ident == text))
    if build is None:
        raise NotFound(f"no build {text!r} on this hub (builds are named SOURCE_VERSION, e.g. hello_2.10-3, or by ID)")
    return build


def get_task(session: Session, task_id: int) -> Task:
    task = session.get(Task, task_id)
    if task is None:
        raise NotFound(f"no task {task_id}")
    return task


def _arch_matches(token: str, arch: str) -> bool:
    return token in ("any", "linux-any", arch, f"linux-{arch}", f"any-{arch}")


def plan_arches(
    source_arches: tuple[str, ...], tag_arches: list[str], wanted: list[str] | None
) -> list[tuple[str, str]]:
    """(arch, build_what) per buildArch task; arch:all packages are built once, with the first arch."""
    arches = [a for a in tag_arches if not wanted or a in wanted]
    if wanted:
        unknown = [a for a in wanted if a not in tag_arches]
        if unknown:
            raise HubError(
                f"arch(es) {', '.join(unknown)} not built by the build tag (it builds {' '.join(tag_arches)})"
            )
    specific = [a for a in arches if any(_arch_matches(t, a) for t in source_arches if t != "all")]
    has_all = "all" in source_arches
    if not specific:
        if has_all and arches:
            return [(arches[0], "binary")]
        raise HubError(
            f"the source builds for '{' '.join(source_arches)}' "
            f"but the build tag builds {' '.join(arches) or 'nothing'}"
        )
    plan = [(specific[0], "binary" if has_all else "arch")]
    plan += [(a, "arch") for a in specific[1:]]
    return plan


def submit(
    session: Session,
    store: Store,
    pkg: SourcePackage,
    target_name: str,
    owner: str,
    *,
    requested_by: str = "",
    arches: list[str] | None = None,
    priority: int = 20,
    max_attempts: int = 3,
    verification: Verification | None = None,
    plugins: dict[str, dict[str, Any]] | None = None,
) -> Submitted:
    """Create the build and its task tree, or return the existing build of the same source version.

    ``verification`` says how the source was authenticated (recorded on a new build); ``plugins`` are the
    deb-mock plugins the request adds to the target's (only those the target allows).
    """
    target = get_target(session, target_name)
    chosen = plugins_for(target, plugins or {})
    existing = session.scalar(select(Build).where(Build.ident == pkg.ident))
    if existing is not None and existing.state == BuildState.DELETED:
        raise Conflict(deleted_message(existing, "submitted again"))
    if existing is not None:
        task = session.get(Task, existing.task_id) if existing.task_id else None
        if task is None:
            raise Conflict(f"build {pkg.ident} exists without a task")
        return Submitted(existing, task, True)
    tag_arches = target.build_tag.arches.split()
    plan = plan_arches(pkg.architectures, tag_arches, arches)
    try:
        stanza = _source_stanza(pkg)
    except aptrepo.RepoError as exc:
        raise HubError(f"bad source package: {exc}") from None
    build = Build(
        ident=pkg.ident,
        source=pkg.source,
        version=pkg.version,
        state=BuildState.BUILDING,
        owner=owner,
        requested_by=requested_by,
        target_id=target.id,
        architectures=" ".join(pkg.architectures),
        source_stanza=stanza,
        source_trust=verification.trust if verification else "",
        source_verification=verification.how if verification else "",
        plugins=chosen,
        disable_plugins=list(target.disable_plugins or []),
    )
    session.add(build)
    try:
        session.flush()
    except IntegrityError:  # submitted concurrently: the other one won
        raise Conflict(f"build {pkg.ident} was submitted at the same moment; ask again to get it") from None
    for path in [pkg.dsc_path, *(pkg.directory / f.name for f in pkg.files)]:
        sha, size = store.put_file(path)
        session.add(Artifact(build_id=build.id, name=path.name, kind="source", sha256=sha, size=size))
    parent = _task_tree(session, build, plan, owner, priority, max_attempts)
    events.record(session, "build.submitted", "build", build.id, owner, ident=build.ident, target=target.name,
                  task=parent.id)
    return Submitted(build, parent, False)


def plugins_for(target: Target, requested: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The deb-mock plugins a build of ``target`` runs: the target's, plus those the request adds where the
    target's ``request_plugins`` allows; for a plugin both name, the target's options win. The request's
    options of deb-mock's own plugins are checked (400 naming the plugin, the option and what it takes)."""
    allowed = set(target.request_plugins or [])
    refused = sorted(set(requested) - allowed - set(target.plugins or {}))
    if refused:
        raise HubError(f"target {target.name} does not let a build request add plugin(s) {', '.join(refused)} "
                       f"(it allows: {', '.join(sorted(allowed)) or 'none'}; an admin changes that with "
                       "edit-target --request-plugin NAME)", 403)
    buildplugins.check_request(requested, target.name)
    merged = {name: dict(options) for name, options in requested.items()}
    for name, options in (target.plugins or {}).items():
        merged[name] = {**merged.get(name, {}), **options}
    return dict(sorted(merged.items()))


def _task_tree(session: Session, build: Build, plan: list[tuple[str, str]], owner: str, priority: int,
               max_attempts: int) -> Task:
    parent = Task(build_id=build.id, method=TaskMethod.BUILD, state=TaskState.OPEN, owner=owner, priority=priority,
                  started=time.time())
    session.add(parent)
    session.flush()
    build.task_id = parent.id
    for arch, what in plan:
        child = Task(parent_id=parent.id, build_id=build.id, method=TaskMethod.BUILD_ARCH, arch=arch, build_what=what,
                     state=TaskState.FREE, owner=owner, priority=priority, max_attempts=max_attempts)
        session.add(child)
    session.flush()
    return parent


def _source_stanza(pkg: SourcePackage) -> str:
    """The Sources paragraph fields taken from the .dsc (apt needs Package, not Source)."""
    directory = aptrepo.pool_path(pkg.source, pkg.dsc_path.name).rsplit("/", 1)[0]
    return aptrepo.scan_dsc(pkg.dsc_path, directory).stanza


def children(session: Session, task_id: int) -> list[Task]:
    return list(session.scalars(select(Task).where(Task.parent_id == task_id).order_by(Task.id)))


def cancel_task(session: Session, task: Task, actor: str) -> list[int]:
    """Cancel a task, its subtasks and (for a build task) the build. Returns the canceled task IDs."""
    root = task
    while root.parent_id is not None:
        root = get_task(session, root.parent_id)
    if root.state not in TASK_ACTIVE:
        raise Conflict(f"task {root.id} is {root.state}; only waiting or running tasks can be canceled")
    done = []
    for t in [root, *children(session, root.id)]:
        if t.state in TASK_ACTIVE:
            t.state = TaskState.CANCELED
            t.completed = time.time()
            t.lease_expires = None
            done.append(t.id)
            events.record(session, "task.canceled", "task", t.id, actor)
    if root.build_id is not None:
        build = session.get(Build, root.build_id)
        if build is not None and build.state in BUILD_ACTIVE:
            build.state = BuildState.CANCELED
            build.completed = time.time()
            events.record(session, "build.canceled", "build", build.id, actor)
    return done


def resubmit(session: Session, build: Build, actor: str, max_attempts: int) -> Task:
    """Build a failed, canceled or dep-waiting build again (same identity, new task tree)."""
    if locked_state(session, build) == BuildState.DELETED:
        raise Conflict(deleted_message(build, "built again"))
    if build.state == BuildState.COMPLETE:
        raise Conflict(f"build {build.ident} is complete; a source version is built once per hub")
    if build.state == BuildState.BUILDING:
        raise Conflict(f"build {build.ident} is still building (task {build.task_id}); cancel it first")
    if build.target is None:
        raise Conflict(f"build {build.ident} belongs to a target that was removed; it cannot be built again")
    old = session.get(Task, build.task_id) if build.task_id else None
    if old is not None and old.state in TASK_ACTIVE:
        cancel_task(session, old, actor)
    prior = children(session, old.id) if old else []
    plan = [(t.arch, t.build_what) for t in prior if t.method == TaskMethod.BUILD_ARCH]
    if not plan:
        raise Conflict(f"build {build.ident} has no earlier tasks to repeat")
    build.state = BuildState.BUILDING
    build.completed = None
    parent = _task_tree(session, build, plan, actor, old.priority if old else 20, max_attempts)
    events.record(session, "build.resubmitted", "build", build.id, actor, task=parent.id)
    return parent


def finish_parent(session: Session, store: Store, parent: Task) -> BuildState | None:
    """Called when a child changed state: close the build when every buildArch child succeeded.

    Returns the build's new state when it changed.
    """
    kids = [t for t in children(session, parent.id) if t.method == TaskMethod.BUILD_ARCH]
    build = session.get(Build, parent.build_id) if parent.build_id else None
    if build is None:
        return None
    if any(t.state == TaskState.FAILED for t in kids):
        for t in kids:
            if t.state in TASK_ACTIVE:
                t.state = TaskState.CANCELED
                t.completed = time.time()
        parent.state = TaskState.FAILED
        parent.completed = time.time()
        build.state = BuildState.FAILED
        build.completed = time.time()
        events.record(session, "build.failed", "build", build.id, "hub")
        hooks_of(session).build_done(session, build)
        return BuildState.FAILED
    if all(t.state == TaskState.CLOSED for t in kids):
        from deb_orchestrator.hub import packages

        try:
            packages.register_binaries(session, store, build)
        except HubError as exc:
            parent.state = TaskState.FAILED
            parent.error = exc.message
            parent.completed = build.completed = time.time()
            build.state = BuildState.FAILED
            events.record(session, "build.failed", "build", build.id, "hub", error=exc.message)
            hooks_of(session).build_done(session, build)
            return BuildState.FAILED
        parent.state = TaskState.CLOSED
        parent.completed = time.time()
        build.state = BuildState.COMPLETE
        build.completed = time.time()
        events.record(session, "build.complete", "build", build.id, "hub")
        hooks_of(session).build_done(session, build)
        if build.target is not None:
            _tag_finished(session, parent, build, build.target.dest_tag)
        return BuildState.COMPLETE
    if any(t.state == TaskState.DEP_WAIT for t in kids) and build.state != BuildState.DEP_WAIT:
        build.state = BuildState.DEP_WAIT
        events.record(session, "build.dep-wait", "build", build.id, "hub")
        return BuildState.DEP_WAIT
    if build.state == BuildState.DEP_WAIT and not any(t.state == TaskState.DEP_WAIT for t in kids):
        build.state = BuildState.BUILDING
        return BuildState.BUILDING
    return None


def _tag_finished(session: Session, parent: Task, build: Build, tag: Tag) -> None:
    """Tag a finished build into its target's destination, recorded as a ``tag`` task; a hub plugin's policy
    may refuse (the build stays complete and untagged, the tag task failed with the refusal)."""
    tag_task = Task(parent_id=parent.id, build_id=build.id, method=TaskMethod.TAG, state=TaskState.CLOSED,
                    owner=parent.owner, started=time.time(), completed=time.time(), result={"tag": tag.name})
    session.add(tag_task)
    try:
        tag_build(session, tag, build, "hub")
    except PolicyRefused as exc:
        tag_task.state = TaskState.FAILED
        tag_task.error = exc.message
        session.flush()
        events.record(session, "tag.refused", "tag", tag.id, "hub", build=build.ident, reason=exc.message)


def locked_state(session: Session, build: Build) -> str | None:
    """The build's state, its row locked for the transaction: gc marks builds deleted under the same lock
    (hub/gc.py), so a tagging or a resubmit either sees ``deleted`` or keeps gc off the build."""
    return session.scalar(select(Build.state).where(Build.id == build.id).with_for_update())


def deleted_message(build: Build, what: str) -> str:
    hint = "; a source version is built once per hub: build a new version" if what != "downloaded" else ""
    return f"build {build.ident} was deleted by deb-orchestrator gc (its files are gone) and cannot be {what}{hint}"


def tag_build(session: Session, tag: Tag, build: Build, actor: str) -> None:
    if locked_state(session, build) == BuildState.DELETED:
        raise Conflict(deleted_message(build, "tagged"))
    if build.state != BuildState.COMPLETE:
        raise Conflict(f"build {build.ident} is {build.state}; only complete builds can be tagged")
    if session.scalar(select(TagListing).where(TagListing.tag_id == tag.id, TagListing.build_id == build.id)):
        raise Conflict(f"build {build.ident} is already tagged in {tag.name}")
    hooks = hooks_of(session)
    hooks.before_tag(session, tag, build, actor)  # a policy may refuse (PolicyRefused), nothing changed yet
    session.add(TagListing(tag_id=tag.id, build_id=build.id, by=actor))
    events.record(session, "tag.build-added", "tag", tag.id, actor, build=build.ident)
    mark_dirty(session, tag.id)
    hooks.after_tag(session, tag, build, actor)


def untag_build(session: Session, tag: Tag, build: Build, actor: str) -> None:
    row = session.scalar(select(TagListing).where(TagListing.tag_id == tag.id, TagListing.build_id == build.id))
    if row is None:
        raise NotFound(f"build {build.ident} is not tagged in {tag.name}")
    session.delete(row)
    build.untagged = time.time()  # gc's untagged retention counts from here
    events.record(session, "tag.build-removed", "tag", tag.id, actor, build=build.ident)
    mark_dirty(session, tag.id)


def mark_dirty(session: Session, tag_id: int) -> None:
    """The tag changed: its repo and the repos of every tag inheriting from it must be published again."""
    for tid in inheritance.descendants(session, tag_id):
        # an UPDATE even when the row already says dirty: it takes the row lock the publisher's "dirty = False"
        # also takes, so a change committed after the publisher read the tag is never lost (PostgreSQL, several
        # hub workers); setting an ORM attribute that is already True would write nothing
        if not session.execute(update(Repo).where(Repo.tag_id == tid).values(dirty=True)).rowcount:  # type: ignore[attr-defined]
            session.add(Repo(tag_id=tid, dirty=True, state=RepoState.PENDING))


def tagged_builds(session: Session, tag_id: int, *, inherit: bool) -> list[tuple[Build, str]]:
    """Builds visible in a tag: the latest tagging of each source wins within a tag, the first tag wins
    across inheritance (Koji). Returns (build, tag name it comes from), sorted by source name."""
    tag_ids = inheritance.order(session, tag_id) if inherit else [tag_id]
    tag_names = dict(zip(tag_ids, inheritance.names(session, tag_ids), strict=True))
    chosen: dict[str, tuple[Build, str]] = {}
    for tid in tag_ids:
        rows = session.execute(
            select(Build, TagListing.id)
            .join(TagListing, TagListing.build_id == Build.id)
            .where(TagListing.tag_id == tid)
            .order_by(TagListing.id.desc())
        ).all()
        seen_here: set[str] = set()
        for build, _ in rows:
            if build.source in chosen or build.source in seen_here:
                continue
            seen_here.add(build.source)
            chosen[build.source] = (build, tag_names[tid])
    return [chosen[k] for k in sorted(chosen)]


def count_builds(session: Session) -> int:
    return int(session.scalar(select(func.count(Build.id))) or 0)


def artifact_path(store: Store, art: Artifact) -> Path:
    return store.path(art.sha256)
