"""A small, typed client for the hub's REST API (httpx). The CLI, the builder and deb-bootc-compose use it.

Typical use (compose)::

    from deb_orchestrator.client import HubClient

    with HubClient.from_environment("http://hub:8080") as hub:   # token: DEB_ORCHESTRATOR_TOKEN or the config
        build = hub.find_build("hello_2.10-3")          # None when the hub never built it
        if build is None:
            sub = hub.submit("trixie-build", "http://deb.debian.org/debian/pool/main/h/hello/hello_2.10-3.dsc")
            task = hub.wait_task(sub.task.id)            # follows the task tree until it finishes
        repo = hub.wait_repo("trixie-dest", build="hello_2.10-3")   # published and signed
        line = hub.sources_line("trixie-dest", key_path="/etc/apt/keyrings/hub.asc")

Answers are the typed models of :mod:`deb_orchestrator.wire` (``sub.task.id``; ``sub["task"]["id"]`` works too).
Every method raises :class:`HubError` (with the HTTP status and the hub's message) on an error answer,
and :class:`HubUnreachable` when the hub cannot be reached; :meth:`HubClient.from_environment` raises
:class:`HubConfigError` for a configuration it cannot read.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

from deb_orchestrator.clientconfig import (
    DEFAULT_HUB,
    HubConfigError,
    config_path,
    load_config,
)
from deb_orchestrator.eventfeed import EventFeed
from deb_orchestrator.hubhttp import API, HubError, HubTransport, HubUnreachable
from deb_orchestrator.states import FINAL_BUILD_STATES, FINAL_TASK_STATES, BuildState, RepoState, TaskMethod, TaskState
from deb_orchestrator.wire import (
    CLAIM,
    AuditOut,
    BuildCancelOut,
    BuildClaim,
    BuildDetail,
    BuildOut,
    CancelOut,
    CompleteAndClaimOut,
    CompleteOut,
    EventOut,
    GcReport,
    HeartbeatOut,
    HostCreated,
    HostOut,
    NoopClaim,
    ReleaseOut,
    RepoOut,
    RepoWaitOut,
    ResubmitOut,
    SubmitOut,
    TagBuildOut,
    TaggedBuild,
    TagOut,
    TagRemoved,
    TargetOut,
    TargetRemoved,
    TaskDetail,
    TaskOut,
    TokenCreated,
    TokenOut,
    TokenRevoked,
    UploadOut,
    WhoAmI,
)
from deb_orchestrator.wire.webhooks import WebhookDeliveryOut, WebhookOut
from debarchive.digest import sha256_file
from debarchive.dsc import SourcePackageError, is_url, parse_dsc

__all__ = ["API", "DEFAULT_HUB", "FINAL_BUILD_STATES", "FINAL_TASK_STATES", "BuildClaim", "BuildDetail", "BuildOut",
           "BuildState", "HubClient", "HubConfigError", "HubError", "HubUnreachable", "NoopClaim", "RepoState",
           "TaskDetail", "TaskMethod", "TaskOut", "TaskState", "config_path", "load_config"]


class HubClient(HubTransport):
    """Every call of the hub's API, typed (the module's docstring shows a use)."""

    # ------------------------------------------------------------------ builds
    def submit(self, target: str, source: str | Path, *, arches: list[str] | None = None, priority: int = 20,
               requested_by: str | None = None, plugins: dict[str, dict[str, Any]] | None = None) -> SubmitOut:
        """Submit a .dsc (http(s) URL: the hub downloads it; local path: it and its files are uploaded).

        ``requested_by`` is recorded on a new build (e.g. ``compose hello-bootc-1-20261122.t.0``); the hub
        records the source URL (or ``upload:NAME.dsc``) when it is not given.

        ``existing`` in the answer is true when this source version was submitted before (the answer then
        names that build and its task). ``plugins``: deb-mock plugins to add, where the target allows them.
        """
        if isinstance(source, str) and is_url(source):
            body: dict[str, Any] = {"target": target, "source_url": source, "arches": arches, "priority": priority,
                                    "plugins": plugins or {}}
            if requested_by:
                body["requested_by"] = requested_by
            return self._one(SubmitOut, self.post("/builds", body, timeout=600))
        dsc_path = Path(source)
        pkg = parse_dsc(dsc_path)
        paths = [dsc_path, *(dsc_path.parent / f.name for f in pkg.files)]
        missing = [p.name for p in paths if not p.is_file()]
        if missing:
            raise SourcePackageError(f"{dsc_path} names {', '.join(missing)}, not found next to it in "
                                     f"{dsc_path.parent}; put the source package's files together")
        with ExitStack() as stack:
            files = [("files", (p.name, stack.enter_context(p.open("rb")), "application/octet-stream"))
                     for p in paths]
            data = {"target": target, "arches": " ".join(arches or []), "priority": str(priority),
                    "plugins": json.dumps(plugins or {})}
            if requested_by:
                data["requested_by"] = requested_by
            resp = self.request("POST", "/builds/upload", data=data, files=files, timeout=600)
        return self._one(SubmitOut, resp.json())

    def build(self, ref: str | int) -> BuildDetail:
        """A build by ``SOURCE_VERSION`` or ID, with its tasks, files, packages and buildroots."""
        return self._one(BuildDetail, self.get(f"/builds/{ref}"))

    def find_build(self, ident: str) -> BuildDetail | None:
        """The build of ``SOURCE_VERSION`` (e.g. ``hello_2.10-3``), or None if the hub has none."""
        try:
            return self.build(ident)
        except HubError as exc:
            if exc.status == 404:
                return None
            raise

    def builds(self, state: str | None = None, limit: int = 100) -> list[BuildOut]:
        return self._many(BuildOut, self.get("/builds", state=state, limit=limit))

    def cancel_build(self, ref: str | int) -> BuildCancelOut:
        return self._one(BuildCancelOut, self.post(f"/builds/{ref}/cancel"))

    def resubmit(self, ref: str | int) -> ResubmitOut:
        return self._one(ResubmitOut, self.post(f"/builds/{ref}/resubmit"))

    def download(self, path: str, dest: Path, *, api: bool = True) -> Path:
        """Stream ``path`` (e.g. ``/builds/hello_2.10-3/files/build.log``) to ``dest``."""
        url = API + path if api else path
        tmp = dest.with_name(dest.name + ".part")
        try:
            with self.http.stream("GET", url) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    raise HubError(resp.status_code, resp.json().get("detail", resp.text), "GET", url)
                with tmp.open("wb") as f:
                    for chunk in resp.iter_bytes(1 << 20):
                        f.write(chunk)
        except httpx.TransportError as exc:
            raise HubUnreachable(self.url, str(exc)) from exc
        tmp.replace(dest)
        return dest

    # ------------------------------------------------------------------ tasks
    def task(self, task_id: int) -> TaskDetail:
        return self._one(TaskDetail, self.get(f"/tasks/{task_id}"))

    def tasks(self, state: str | None = None, limit: int = 100) -> list[TaskOut]:
        return self._many(TaskOut, self.get("/tasks", state=state, limit=limit))

    def cancel_task(self, task_id: int) -> CancelOut:
        return self._one(CancelOut, self.post(f"/tasks/{task_id}/cancel"))

    def event_feed(self, *, poll: float = 1.0, **filters: Any) -> EventFeed:
        """The hub's event stream for ``filters`` (task, build, tag, kind) as wake-ups, polling when streaming
        fails (:mod:`deb_orchestrator.eventfeed`); use it as a context manager, before reading the state."""
        self.feed = EventFeed(self.url, self.token, filters, poll=poll, **self.feed_options)
        return self.feed

    def wait_task(self, task_id: int, *, timeout: float | None = None, poll: float = 1.0,
                  on_change: Callable[[TaskDetail], None] | None = None) -> TaskDetail:
        """Follow a task (and its subtasks) until it is closed, failed or canceled; returns it. Woken by the
        hub's event stream (polling every ``poll`` seconds when there is none).

        A build task waiting for build-dependencies (a ``dep-wait`` subtask) is not finished: it continues
        when the repository changes. ``on_change`` gets the task whenever a state in its tree changes.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        last: tuple[Any, ...] | None = None
        task = self.task(task_id)
        if task.state in FINAL_TASK_STATES:  # nothing to wait for: no stream
            if on_change is not None:
                on_change(task)
            return task
        with self.event_feed(task=task_id, poll=poll) as feed:
            while True:
                seen = feed.generation
                task = self.task(task_id)
                snapshot = (task.state, tuple((c.id, c.state) for c in task.children))
                if snapshot != last and on_change is not None:
                    on_change(task)
                last = snapshot
                if task.state in FINAL_TASK_STATES:
                    return task
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(f"task {task_id} is still {task.state} after {timeout} s")
                feed.wait(seen, 30.0 if deadline is None else max(0.0, min(30.0, deadline - time.monotonic())))

    # ------------------------------------------------------------------ tags, targets, repos
    def add_tag(self, name: str, *, parents: list[str] | None = None, arches: list[str] | None = None,
                external_repos: list[dict[str, Any]] | None = None) -> TagOut:
        body: dict[str, Any] = {"name": name, "parents": parents or [], "external_repos": external_repos or []}
        if arches:
            body["arches"] = arches
        return self._one(TagOut, self.post("/tags", body))

    def tags(self) -> list[TagOut]:
        return self._many(TagOut, self.get("/tags"))

    def tag(self, name: str) -> TagOut:
        return self._one(TagOut, self.get(f"/tags/{name}"))

    def add_target(self, name: str, build_tag: str, dest_tag: str, **plugins: Any) -> TargetOut:
        """``plugins``: ``plugins``, ``request_plugins``, ``disable_plugins`` and ``policy`` (docs/plugins.md)."""
        return self._one(TargetOut, self.post("/targets", {"name": name, "build_tag": build_tag, "dest_tag": dest_tag,
                                                           **plugins}))

    def edit_target(self, name: str, **fields: Any) -> TargetOut:
        """Replace a target's ``plugins``, ``request_plugins``, ``disable_plugins`` or ``policy`` (those given)."""
        return self._one(TargetOut, self.request("PATCH", f"/targets/{name}", json=fields).json())

    def targets(self) -> list[TargetOut]:
        return self._many(TargetOut, self.get("/targets"))

    def target(self, name: str) -> TargetOut:
        """A build target: its build tag and destination tag."""
        return self._one(TargetOut, self.get(f"/targets/{name}"))

    def remove_tag(self, name: str, *, force: bool = False) -> TagRemoved:
        """Remove a tag and its repo; ``force`` also when other tags inherit from it (409 otherwise)."""
        return self._one(TagRemoved, self.request("DELETE", f"/tags/{name}", params={"force": str(force).lower()})
                         .json())

    def remove_target(self, name: str) -> TargetRemoved:
        return self._one(TargetRemoved, self.request("DELETE", f"/targets/{name}").json())

    def setup_target(self, target: str, *, mirror: str, suite: str, arches: list[str] | None = None,
                     components: list[str] | None = None, base: str | None = None, dest: str | None = None,
                     build: str | None = None) -> dict[str, str]:
        """docs/orchestrator.md's usual set over one Debian suite, made where missing (admin token).

        Tags ``base`` (default ``<target>-base``: the external repo ``mirror suite components``) ← ``dest``
        (``<target>-dest``) ← ``build`` (``<target>-build``) and the target ``target``: build → dest, so each
        build sees the ones before it. Existing tags and the target are kept as they are. Returns the names.
        """
        names = {"base": base or f"{target}-base", "dest": dest or f"{target}-dest",
                 "build": build or f"{target}-build", "target": target}

        def exists(look: Callable[[str], object], name: str) -> bool:
            try:
                look(name)
            except HubError as exc:
                if exc.status == 404:
                    return False
                raise
            return True

        if not exists(self.tag, names["base"]):
            self.add_tag(names["base"], arches=arches or ["amd64"], external_repos=[
                {"url": mirror, "suite": suite, "components": components or ["main"]}])
        if not exists(self.tag, names["dest"]):
            self.add_tag(names["dest"], parents=[names["base"]])
        if not exists(self.tag, names["build"]):
            self.add_tag(names["build"], parents=[names["dest"]])
        if not exists(self.target, target):
            self.add_target(target, names["build"], names["dest"])
        return names

    def tag_build(self, tag: str, build: str | int) -> TagBuildOut:
        return self._one(TagBuildOut, self.post(f"/tags/{tag}/builds", {"build": str(build)}))

    def untag_build(self, tag: str, build: str | int) -> TagBuildOut:
        return self._one(TagBuildOut, self.request("DELETE", f"/tags/{tag}/builds/{build}").json())

    def list_tagged(self, tag: str, *, inherit: bool = True) -> list[TaggedBuild]:
        return self._many(TaggedBuild, self.get(f"/tags/{tag}/builds", inherit=str(inherit).lower()))

    def latest_build(self, tag: str, package: str) -> TaggedBuild:
        return self._one(TaggedBuild, self.get(f"/tags/{tag}/latest/{package}"))

    def repos(self) -> list[RepoOut]:
        return self._many(RepoOut, self.get("/repos"))

    def repo(self, tag: str) -> RepoOut:
        """The tag's repository: generation, state, dirty, the builds it holds, when it was published."""
        return self._one(RepoOut, self.get(f"/repos/{tag}"))

    def regen_repo(self, tag: str) -> RepoOut:
        return self._one(RepoOut, self.post(f"/repos/{tag}/regen"))

    def wait_repo(self, tag: str, *, build: str | int | None = None, after: int = 0,
                  timeout: float = 600.0) -> RepoWaitOut:
        """Wait until the tag's repo is published (and holds ``build`` if given); returns its state. Woken by
        the hub's event stream (the hub's long-poll when there is none).

        Raises TimeoutError after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        with ExitStack() as stack:
            feed: EventFeed | None = None  # opened after a first look found nothing yet
            news: list[dict[str, Any]] = []  # the events of the last wait
            quiet = False  # the last wait ended without any event
            while True:
                seen = 0 if feed is None else feed.generation
                remaining = deadline - time.monotonic()
                wait = 0 if feed is None or feed.streaming else min(max(remaining, 0), 30)
                info = self._one(RepoWaitOut, self.request(
                    "GET", f"/repos/{tag}/wait", params={k: v for k, v in {
                        "build": build, "after": after, "timeout": wait}.items() if v is not None}, timeout=60).json())
                if info.done:
                    return info
                # failed: after a long-poll, or a publication that failed (an event) or nothing for 30 s since;
                # not a failure left from before that a publication under way may replace
                if info.state == RepoState.FAILED and feed is not None and (
                        not feed.streaming or quiet or any(e.get("kind") == "repo.failed" for e in news)):
                    raise HubError(500, f"publishing the repo of {tag} failed: {info.error}")
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"repo {tag} did not get {build or 'published'} within {timeout} s "
                                       f"(generation {info.generation}, state {info.state})")
                if feed is None:
                    feed = stack.enter_context(self.event_feed(tag=tag, kind="repo.*"))
                elif feed.streaming:
                    feed.wait(seen, min(30.0, max(0.0, deadline - time.monotonic())))
                    news = feed.since(seen)
                    quiet = feed.generation == seen and time.monotonic() < deadline

    def repo_url(self, tag: str) -> str:
        return f"{self.url}/repos/{tag}"

    def repo_key(self, tag: str) -> str:
        """The ASCII-armoured public key that signs the tag's repo."""
        return self.request("GET", f"/repos/{tag}/key.asc", api=False).text

    def sources_line(self, tag: str, key_path: str | Path) -> str:
        """``deb [signed-by=KEY] <hub>/repos/<tag> <tag> main``."""
        return f"deb [signed-by={key_path}] {self.repo_url(tag)} {tag} main"

    # ------------------------------------------------------------------ hosts, tokens
    def add_host(self, name: str, arches: list[str], capacity: int = 1) -> HostCreated:
        return self._one(HostCreated, self.post("/hosts", {"name": name, "arches": arches, "capacity": capacity}))

    def hosts(self) -> list[HostOut]:
        return self._many(HostOut, self.get("/hosts"))

    def edit_host(self, name: str, *, enabled: bool | None = None, capacity: int | None = None) -> HostOut:
        body = {k: v for k, v in {"enabled": enabled, "capacity": capacity}.items() if v is not None}
        return self._one(HostOut, self.request("PATCH", f"/hosts/{name}", json=body).json())

    def create_token(self, user: str, scopes: list[str], name: str = "") -> TokenCreated:
        return self._one(TokenCreated, self.post("/tokens", {"user": user, "scopes": scopes, "name": name}))

    def tokens(self) -> list[TokenOut]:
        return self._many(TokenOut, self.get("/tokens"))

    def revoke_token(self, token_id: int) -> TokenRevoked:
        return self._one(TokenRevoked, self.request("DELETE", f"/tokens/{token_id}").json())

    def whoami(self) -> WhoAmI:
        return self._one(WhoAmI, self.get("/whoami"))

    def audit(self, *, since: str | float | None = None, until: str | float | None = None, user: str | None = None,
              action: str | None = None, obj: str | None = None, before: int | None = None,
              limit: int = 100) -> list[AuditOut]:
        """Audit records, newest first (admin token). ``since``/``until``: ISO 8601 (UTC without a zone) or
        seconds since the epoch; ``obj``: ``KIND``, ``KIND:NAME`` or ``KIND:ID``; ``before``: the next page after
        a page whose last record had this ID."""
        return self._many(AuditOut, self.get("/audit", since=since, until=until, user=user, action=action,
                                             object=obj, before=before, limit=limit))

    def events(self, after: int = 0, limit: int = 200) -> list[EventOut]:
        return self._many(EventOut, self.get("/events", after=after, limit=limit))

    def gc(self, *, dry_run: bool = False, retention: dict[str, float] | None = None,
           keep_forever: list[str] | None = None) -> GcReport:
        """`deb-orchestrator gc` (scope admin): ``retention`` overrides the hub's days per kind (RetentionIn)."""
        body = {"dry_run": dry_run, "retention": retention or {}, "keep_forever": keep_forever or []}
        return self._one(GcReport, self.post("/gc", body, timeout=1800))

    def add_webhook(self, url: str, events: list[str], secret: str) -> WebhookOut:
        return self._one(WebhookOut, self.post("/webhooks", {"url": url, "events": events, "secret": secret}))

    def webhooks(self) -> list[WebhookOut]:
        return self._many(WebhookOut, self.get("/webhooks"))

    def remove_webhook(self, webhook_id: int) -> WebhookOut:
        return self._one(WebhookOut, self.request("DELETE", f"/webhooks/{webhook_id}").json())

    def webhook_deliveries(self, webhook_id: int, state: str | None = None,
                           limit: int = 100) -> list[WebhookDeliveryOut]:
        return self._many(WebhookDeliveryOut, self.get(f"/webhooks/{webhook_id}/deliveries", state=state,
                                                       limit=limit))

    # ------------------------------------------------------------------ builder protocol
    def claim(self, arches: list[str], capacity: int | None = None,
              wait: float = 30.0) -> BuildClaim | NoopClaim | None:
        """Long-poll for a task; None when none came within ``wait`` seconds."""
        resp = self.request("POST", "/tasks/claim", json={"arches": arches, "capacity": capacity, "wait": wait},
                            timeout=wait + 30)
        return None if resp.status_code == 204 else CLAIM.validate_json(resp.content)

    def noop(self, count: int = 1, arch: str = "amd64", priority: int = 20) -> list[int]:
        """Queue no-op leaf tasks (admin): builders close them at once. For scheduler tests and benchmarks."""
        return list(self.post("/tasks/noop", {"count": count, "arch": arch, "priority": priority})["tasks"])

    def heartbeat(self, task_id: int, fence: int, log: list[str] | None = None) -> HeartbeatOut:
        return self._one(HeartbeatOut, self.post(f"/tasks/{task_id}/heartbeat", {"fence": fence, "log": log or []}))

    def upload(self, task_id: int, fence: int, path: Path, name: str | None = None) -> UploadOut:
        sha = sha256_file(path)

        def body() -> Iterator[bytes]:
            with path.open("rb") as f:
                while block := f.read(1 << 20):
                    yield block

        resp = self.request("PUT", f"/tasks/{task_id}/files/{name or path.name}",
                            params={"fence": fence, "sha256": sha}, content=body(), timeout=600)
        return self._one(UploadOut, resp.json())

    def complete(self, task_id: int, fence: int, result: dict[str, Any]) -> CompleteOut:
        return self._one(CompleteOut, self.post(f"/tasks/{task_id}/complete", {"fence": fence, "result": result}))

    def release(self, task_id: int, fence: int, reason: str) -> ReleaseOut:
        return self._one(ReleaseOut, self.post(f"/tasks/{task_id}/release", {"fence": fence, "reason": reason}))

    def complete_and_claim(self, task_id: int, fence: int, result: dict[str, Any], arches: list[str],
                           capacity: int | None = None, wait: float = 0.0) -> CompleteAndClaimOut:
        """``complete`` then ``claim`` in one request: ``completed`` and ``next`` (a claim or None).

        A stale fence raises HubError 409 and claims nothing."""
        body = {"fence": fence, "result": result, "next": {"arches": arches, "capacity": capacity, "wait": wait}}
        return self._one(CompleteAndClaimOut, self.post(f"/tasks/{task_id}/complete-and-claim", body,
                                                        timeout=wait + 60))
