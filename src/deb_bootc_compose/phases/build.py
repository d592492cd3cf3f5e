"""build: have the orchestrator build the manifest's ``build.sources`` before gather.

For each source (.dsc URL or path, or ``{git: URL, ref: REF}``: see :mod:`deb_bootc_compose.gitsource`, the
.dsc is made here from the exact commit) the phase computes the build identity ``SOURCE_VERSION`` (DESIGN.md),
asks the hub whether it has that build; if not it submits it to ``build.target``. It then follows every
build of this compose until each one is complete, reporting which package is in which state. A build in
dep-wait is waited for while other builds of this compose are still running (they may provide what it
lacks); once nothing else can change it, the compose fails with the missing build-dependencies and a link
to the task. A failed build fails the compose with its reason, log tail and log link. A build the
destination tag does not show (built for another target, or hidden by a later tagging of another version of
its source) is tagged there (again). Finally the phase waits until the target's destination tag repository
is published with every build, so gather sees them.

With an ``update:`` section the phase also makes the ``deb-bootc`` client: with ``build:`` as one more
source for the hub, its version carrying its source hash (:mod:`deb_bootc_compose.clientsource`), else
locally with deb-mock (:mod:`deb_bootc_compose.clientdeb`); ``ctx.client_deb`` tells gather which.

Builds it submits record the compose as ``requested_by`` (``compose <COMPOSE_ID>``) at the hub.
What was built is recorded in ``ctx.orchestrator_builds`` (SOURCE_VERSION → build/task IDs),
which the metadata phase writes into packages.json for each .deb that came from the tag, and in
``metadata/builds.json`` (every build with its hub, target, tasks per arch, requested_by and, for git
sources, the URL, the ref and the resolved commit).
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from deb_bootc_compose import clientdeb, clientsource, gitsource
from deb_bootc_compose.errors import ComposeError
from deb_bootc_compose.manifest import BuildSpec, GitBuildSource
from deb_bootc_compose.metadata import write_json
from deb_bootc_compose.phases.base import Phase
from deb_bootc_compose.phases.rootfs import HOST_ARCH
from deb_orchestrator.client import (
    FINAL_BUILD_STATES,
    BuildDetail,
    BuildState,
    HubClient,
    HubConfigError,
    HubError,
    TaskMethod,
    TaskOut,
    TaskState,
)
from debarchive.dsc import SourcePackageError, is_url, parse_dsc, strip_epoch

BUILDS_JSON = "builds.json"  # in the compose's metadata/ (ComposePaths.builds_json)
POLL_SECONDS = float(os.environ.get("DEB_BOOTC_COMPOSE_BUILD_POLL", "2"))
# after every other build of this compose finished and the repos settled, how long a dep-wait may stay
DEP_WAIT_GRACE = float(os.environ.get("DEB_BOOTC_COMPOSE_DEP_WAIT_GRACE", "60"))
STREAM_WAIT = 5.0  # seconds between two looks at the builds when the event stream brings nothing
BUILD_TIMEOUT = float(os.environ.get("DEB_BOOTC_COMPOSE_BUILD_TIMEOUT", str(6 * 3600)))


@dataclass
class Tracked:
    ref: str  # as written in the manifest
    ident: str  # SOURCE_VERSION
    source: str
    version: str
    build: BuildDetail | None = None  # the hub's build, once found or submitted
    submitted: bool = False
    state: str = ""  # last reported summary
    dep_wait_since: float | None = None
    git: dict[str, str] | None = None  # url, ref, commit, format of a git source
    client: clientsource.ClientSource | None = None  # the deb-bootc client (update: with build.target)

    @property
    def shown(self) -> str:
        """The source as people know it: the .dsc URL or path, the git URL at its commit, the client's tree."""
        if self.client is not None:
            return f"the deb-bootc client ({self.client.origin}, source {self.client.source_hash[:12]})"
        return f"{self.git['url']} at {self.git['commit'][:12]}" if self.git else self.ref


class BuildPhase(Phase):
    name = "build"
    skippable = True  # skipped, a manifest with update: gets no client (gather says so)

    def _spec(self) -> BuildSpec:
        spec = self.ctx.manifest.build
        if spec is None:
            raise ComposeError("build: the manifest has no build: section")
        return spec

    def skip_reason(self) -> str | None:
        spec = self.ctx.manifest.build
        if (spec is None or not spec.sources) and self.ctx.manifest.update is None:
            return "the manifest has no build: sources and no update: section (no client to build)"
        return None

    def run(self) -> None:
        spec = self.ctx.manifest.build
        client: Tracked | None = None
        if self.ctx.manifest.update is not None:
            if spec is None:
                self._client()
            else:
                client = self._client_source()
        if client is not None or (spec is not None and spec.sources):
            self._orchestrator(client)

    # ------------------------------------------------------------------ the update client
    def _client_source(self) -> Tracked:
        """The deb-bootc client's source package for the hub, its version carrying its source hash (clientsource)."""
        self.progress("making the source package of the deb-bootc client for the orchestrator")
        made = clientsource.prepare(self.ctx.paths.client_source)
        self.progress(f"{made.ident}: made from {made.origin} (source {made.source_hash[:12]})")
        return Tracked(ref=str(made.dsc), ident=made.ident, source=made.source, version=made.version, client=made)

    def _client(self) -> None:
        """Build (or find in the pool) the deb-bootc client: local, through deb-mock's API (see clientdeb)."""
        m = self.ctx.manifest
        mirrors = [s.repo_url() for s in m.sources if not s.is_orchestrator and s.repo_url().startswith("http")]
        if not mirrors:
            raise ComposeError("build: the update client is built with deb-mock from a Debian mirror, and the "
                               "manifest's sources name none (an http(s) url: entry)")
        arch = HOST_ARCH.get(platform.machine(), platform.machine())
        deb = clientdeb.ensure(self.ctx.target, self.ctx.paths.client_build, suite=m.suite, arch=arch,
                               mirror=mirrors[0], log=self.log_path, cancel=self.ctx.cancel, progress=self.progress)
        how = "built now" if deb.built else "from the pool (source unchanged)"
        self.progress(f"{deb.name} {deb.version}: {how}, {deb.size} bytes, source {deb.source_hash[:12]}")
        self.ctx.client_deb = deb

    # ------------------------------------------------------------------ identity
    def _git_identity(self, index: int, entry: GitBuildSource) -> Tracked:
        """Make the .dsc of a git source (compose side, see gitsource) and take its SOURCE_VERSION."""
        where = f"{self.ctx.manifest_path}:build.sources.{index}"
        self.progress(f"{entry.git} ({entry.ref}): cloning and making the source package")
        try:
            made = gitsource.prepare(entry.git, entry.ref, self.ctx.paths.git_source(index), where=where)
        except gitsource.GitSourceError as exc:
            raise ComposeError(str(exc)) from None
        self.progress(f"{made.ident}: made from {entry.git} at {made.commit} ({made.format})")
        return Tracked(ref=str(made.dsc), ident=made.ident, source=made.source, version=made.version,
                       git={"url": made.url, "ref": made.ref, "commit": made.commit, "format": made.format})

    def _identity(self, ref: str) -> Tracked:
        """SOURCE_VERSION of a .dsc URL or path (reads the .dsc itself: its Source and Version fields)."""
        where = f"build.sources entry {ref!r}"
        if is_url(ref):
            if not ref.endswith(".dsc"):
                raise ComposeError(f"{where}: not a .dsc URL; give the URL of the source package's .dsc file")
            with tempfile.TemporaryDirectory() as tmp:
                dest = Path(tmp) / "source.dsc"
                try:
                    resp = httpx.get(ref, timeout=60, follow_redirects=True)
                except httpx.TransportError as exc:
                    raise ComposeError(f"{where}: cannot download it: {exc}") from None
                if resp.status_code != 200:
                    raise ComposeError(f"{where}: downloading it answered HTTP {resp.status_code}; check the URL")
                dest.write_bytes(resp.content)
                return self._parse(dest, ref, where)
        path = Path(ref)
        if not path.is_absolute():
            path = self.ctx.manifest_path.parent / path
        if not path.is_file():
            raise ComposeError(f"{where}: no such file {path} (relative paths are relative to the manifest)")
        return self._parse(path, str(path), where)

    @staticmethod
    def _parse(path: Path, ref: str, where: str) -> Tracked:
        try:
            pkg = parse_dsc(path)
        except SourcePackageError as exc:
            raise ComposeError(f"{where}: not a usable .dsc: {exc}") from None
        return Tracked(ref=ref, ident=pkg.ident, source=pkg.source, version=pkg.version)

    # ------------------------------------------------------------------ hub
    def _hub_url(self) -> str:
        hubs = [s.orchestrator.url for s in self.ctx.manifest.sources if s.orchestrator is not None]
        if not hubs:
            raise ComposeError(
                "build: the manifest asks for builds but names no orchestrator source; add "
                "'- orchestrator: {url: http://HUB:8080, tag: DEST_TAG}' to sources: so the result is gathered"
            )
        return str(hubs[0])

    def _link(self, hub: str, t: Tracked) -> str:
        task = t.build.task_id if t.build is not None else None
        tail = f"{hub}/api/v1/tasks/{task}" if task else f"{hub}/api/v1/builds/{t.ident}"
        return f"{tail} (logs: deb-orchestrator download-logs {t.ident} --hub {hub})"

    def _orchestrator(self, client: Tracked | None) -> None:
        """Have the hub build ``build.sources`` (and the client's source package, when given)."""
        spec = self._spec()
        hub_url = self._hub_url()
        tracked = [self._git_identity(i, ref) if isinstance(ref, GitBuildSource) else self._identity(ref)
                   for i, ref in enumerate(spec.sources)]
        tracked += [client] if client is not None else []
        dup = {t.ident for t in tracked if sum(1 for o in tracked if o.ident == t.ident) > 1}
        if dup:
            raise ComposeError(f"build.sources names {', '.join(sorted(dup))} more than once")
        try:
            with HubClient.from_environment(hub_url) as hub:
                dest_tag = hub.target(spec.target).dest_tag
                for t in tracked:
                    self._find_or_submit(hub, spec.target, t)
                self._follow(hub, hub_url, tracked)
                tagged = {b.ident for b in hub.list_tagged(dest_tag)}
                for t in tracked:
                    if t.ident not in tagged:
                        self._tag(hub, dest_tag, t)
                for t in tracked:
                    self.check_cancelled()
                    self.progress(f"{t.ident}: waiting for the repo of {dest_tag} to publish it")
                    info = hub.wait_repo(dest_tag, build=t.ident, timeout=1800)
                    self.progress(f"{t.ident}: in {dest_tag} (repo generation {info.generation})")
                record = {t.ident: self._record(t, hub_url, spec.target, dest_tag) for t in tracked}
        except HubConfigError as exc:
            raise ComposeError(f"build: {exc}") from None
        except HubError as exc:
            if exc.status == 401 or exc.status == 403:
                raise ComposeError(
                    f"build: the hub {hub_url} refused the request ({exc.detail}); set DEB_ORCHESTRATOR_TOKEN to a "
                    "token with the build scope (deb-orchestrator create-token) or put it in the config file"
                ) from None
            if exc.status == 404 and "target" in exc.detail.lower():
                raise ComposeError(f"build: {exc.detail} at {hub_url}; create it with deb-orchestrator "
                                   "add-target or fix build.target") from None
            raise ComposeError(f"build: {exc}") from None
        except TimeoutError as exc:
            raise ComposeError(f"build: {exc}") from None
        self.ctx.orchestrator_builds = record
        if client is not None:
            self._tagged_client(client, record[client.ident])
        write_json(self.ctx.paths.builds_json, {
            "header": {"type": "deb-bootc-compose.builds", "version": "1.0"},
            "payload": {"compose": {"id": self.ctx.compose_id}, "builds": record},
        })
        self.progress(f"{len(record)} build(s) ready: " + ", ".join(
            f"{k} (build {v['build_id']}, task {v['task_id']})" for k, v in record.items()))

    @staticmethod
    def _record(t: Tracked, hub_url: str, target: str, dest_tag: str) -> dict[str, Any]:
        b = _current(t)
        arch_tasks = [x for x in b.tasks if x.method == TaskMethod.BUILD_ARCH]
        return {
            "build_id": b.id, "task_id": b.task_id, "hub": hub_url,
            "target": target, "dest_tag": dest_tag, "source": t.source, "version": strip_epoch(t.version),
            "submitted": t.submitted, "requested_by": b.requested_by,
            "tasks": {str(x.id): x.arch for x in b.tasks},
            # the task that built each arch's .debs (arch "all" is built on one of the arches)
            "arch_tasks": {x.arch: x.id for x in arch_tasks},
            "hosts": sorted({x.host for x in arch_tasks if x.host}),
            "ref": t.git["url"] if t.git else str(t.client.origin) if t.client else t.ref,
            "git": t.git,
            "client": {"source_hash": t.client.source_hash, "tree": str(t.client.origin)} if t.client else None,
        }

    def _tagged_client(self, t: Tracked, record: dict[str, Any]) -> None:
        """gather takes the client the hub built from the destination tag (clientsource.TaggedClient)."""
        assert t.client is not None
        self.ctx.client_deb = clientsource.TaggedClient(
            name=clientdeb.NAME, version=t.version, source_hash=t.client.source_hash, depends=t.client.depends,
            build_id=record["build_id"], dest_tag=record["dest_tag"])
        how = "submitted now" if t.submitted else "the hub had this version already (source unchanged)"
        self.progress(f"{clientdeb.NAME} {t.version}: {how}, build {record['build_id']}, from {record['dest_tag']}")

    def _tag(self, hub: HubClient, dest_tag: str, t: Tracked) -> None:
        """Make ``t``'s build the one ``dest_tag`` shows: tag it there (built before for another target), or
        tag it again when a newer tagging of its source hides it (another version, e.g. a changed client)."""
        try:
            self.progress(f"{t.ident}: complete but not in {dest_tag}: tagging it there")
            hub.tag_build(dest_tag, t.ident)
        except HubError as exc:
            if exc.status != 409 or "already tagged" not in exc.detail:
                raise
            self.progress(f"{t.ident}: {dest_tag} shows a later tagging of {t.source}: tagging {t.ident} again")
            hub.untag_build(dest_tag, t.ident)
            hub.tag_build(dest_tag, t.ident)

    def _find_or_submit(self, hub: HubClient, target: str, t: Tracked) -> None:
        existing = hub.find_build(t.ident)
        if existing is not None:
            # a failed or canceled build is reported as such by _follow (resubmitting is the user's decision)
            t.build = existing
            self.progress(f"{t.ident}: the hub has build {existing.id} ({existing.state}): not submitted again")
            return
        self.progress(f"{t.ident}: submitting {t.shown} to target {target}")
        sub = hub.submit(target, t.ref, requested_by=f"compose {self.ctx.compose_id}")
        t.submitted = not sub.existing
        t.build = hub.build(sub.build.id)
        self.progress(f"{t.ident}: build {t.build.id}, task {t.build.task_id}: {sub.message}")

    # ------------------------------------------------------------------ following
    def _summary(self, build: BuildDetail) -> str:
        children = [x for x in build.tasks if x.parent_id is not None]
        parts = [f"build {build.state}"]
        for x in children:
            host = f" on {x.host}" if x.host else ""
            attempt = f" (attempt {x.attempts})" if x.attempts > 1 else ""
            parts.append(f"{x.method} {x.arch or ''} {x.state}{host}{attempt}".replace("  ", " "))
        return ", ".join(parts)

    @staticmethod
    def _dep_waiting(build: BuildDetail) -> list[TaskOut]:
        return [x for x in build.tasks if x.state == TaskState.DEP_WAIT]

    def _follow(self, hub: HubClient, hub_url: str, tracked: list[Tracked]) -> None:
        """Until every build is complete: woken by the hub's build and task events (its event stream), polling
        every POLL_SECONDS when the stream does not work (e.g. a proxy that buffers)."""
        with hub.event_feed(kind="build.*,task.*", poll=POLL_SECONDS) as feed:
            deadline = time.monotonic() + BUILD_TIMEOUT
            while True:
                seen = feed.generation
                if self._look(hub, hub_url, tracked, deadline):
                    return
                # at most STREAM_WAIT: cancellation is checked; a dep-wait's grace ends when it ends
                waits = [t.dep_wait_since + DEP_WAIT_GRACE - time.monotonic() + 0.05 for t in tracked
                         if t.dep_wait_since is not None]
                feed.wait(seen, max(0.05, min([STREAM_WAIT, *waits])))

    def _look(self, hub: HubClient, hub_url: str, tracked: list[Tracked], deadline: float) -> bool:
        """One look at the builds: progress, failures, time-outs; True when all are complete."""
        self.check_cancelled()
        for t in tracked:
            if _current(t).state in FINAL_BUILD_STATES and t.state:
                continue
            t.build = hub.build(_current(t).id)
            summary = self._summary(t.build)
            if summary != t.state:
                self.progress(f"{t.ident}: {summary}")
                t.state = summary
        for t in tracked:
            if _current(t).state == BuildState.DELETED:
                raise ComposeError(f"build of {t.ident} ({t.shown}) was deleted by the orchestrator's gc (its "
                                   "files are gone) and a source version is built once per hub: build a new "
                                   f"version; see {self._link(hub_url, t)}")
            if _current(t).state in (BuildState.FAILED, BuildState.CANCELED):
                raise ComposeError(self._failure(hub, hub_url, t))
        pending = [t for t in tracked if _current(t).state != BuildState.COMPLETE]
        if not pending:
            return True
        now = time.monotonic()
        # a dep-wait can only be released by a build that is still running (of this compose or another)
        active = [t for t in pending if not self._dep_waiting(_current(t))]
        for t in pending:
            if not self._dep_waiting(_current(t)):
                t.dep_wait_since = None
            elif t.dep_wait_since is None or active:
                t.dep_wait_since = now
            elif now - t.dep_wait_since > DEP_WAIT_GRACE:
                raise ComposeError(self._unsatisfiable(hub_url, t))
        if now > deadline:
            raise ComposeError(f"build: {', '.join(t.ident for t in pending)} not finished after "
                               f"{BUILD_TIMEOUT:.0f} s; see {', '.join(self._link(hub_url, t) for t in pending)}")
        return False

    def _failure(self, hub: HubClient, hub_url: str, t: Tracked) -> str:
        b = _current(t)
        failed = [x for x in b.tasks if x.state in (TaskState.FAILED, TaskState.CANCELED)]
        reasons = "; ".join(f"task {x.id} ({x.method} {x.arch or ''}): {x.error or x.state}"
                            for x in failed) or b.state
        tail = ""
        for x in failed:
            try:
                full = hub.task(x.id)
            except Exception:  # the failure itself is what matters; the tail is a bonus
                continue
            lines = (full.log_tail or "").splitlines()[-25:]
            if lines:
                tail = "\nlast lines of the build log:\n  " + "\n  ".join(lines)
                break
        return (f"build of {t.ident} ({t.shown}) {b.state} at the orchestrator: {reasons}; "
                f"see {self._link(hub_url, t)}; after fixing the cause: deb-orchestrator resubmit {t.ident}{tail}")

    def _unsatisfiable(self, hub_url: str, t: Tracked) -> str:
        missing = []
        for x in self._dep_waiting(_current(t)):
            for m in x.missing or []:
                missing.append(str(m.get("relation") or m) if isinstance(m, dict) else str(m))
        what = ", ".join(missing) or "(the hub did not say which)"
        return (f"build of {t.ident} waits for build-dependencies that nothing in this compose will provide: {what}; "
                f"no other build is running that could satisfy them (waited {DEP_WAIT_GRACE:.0f} s). Add the source "
                f"that builds them to build.sources, or tag it into the build tag; see {self._link(hub_url, t)}")


def _current(t: Tracked) -> BuildDetail:
    """The hub's build of ``t`` (found or submitted before it is followed)."""
    if t.build is None:
        raise ComposeError(f"build: {t.ident} was not found or submitted at the hub")
    return t.build
