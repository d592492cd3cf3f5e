"""Answers of the hub's REST API (see :mod:`deb_orchestrator.wire`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from deb_orchestrator.states import BuildState, RepoState, TaskMethod, TaskState


class Wire(BaseModel):
    """An answer of the hub. Read by attribute; by key too (``x["state"]``, ``x.get("error")``), and equal to
    the dict of its JSON."""

    model_config = ConfigDict(extra="allow")

    def __getitem__(self, key: str) -> Any:
        if key in type(self).model_fields:
            return getattr(self, key)
        extra = self.model_extra or {}
        if key in extra:
            return extra[key]
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and (key in type(self).model_fields or key in (self.model_extra or {}))

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def __eq__(self, other: object) -> bool:
        """Equal to another answer of the same fields, or to the dict of the JSON the hub sent."""
        if isinstance(other, dict):
            return self.to_json() == other
        return super().__eq__(other)

    def to_json(self) -> dict[str, Any]:
        """The answer as the hub sent it: plain JSON types, the keys it had."""
        return self.model_dump(mode="json", exclude_unset=True)


# ---------------------------------------------------------------------- the builder protocol
class ClaimFile(Wire):
    name: str
    sha256: str
    size: int
    url: str = Field(description="under /api/v1, e.g. /api/v1/builds/7/files/hello_2.10-3.dsc")


class TagRepoRef(Wire):
    path: str = Field(description="the build tag's repository, under the hub's URL: /repos/TAG")
    suite: str
    components: list[str]
    key_path: str = Field(description="its signing key, under the hub's URL: /repos/TAG/key.asc")


class ExternalRepoRef(Wire):
    url: str
    suite: str
    components: list[str]
    key: str | None


class BuildClaim(Wire):
    """A ``buildArch`` task handed to a builder: everything it needs to build."""

    task_id: int
    method: Literal[TaskMethod.BUILD_ARCH]
    fence: int = Field(description="the attempt's fencing token: sent back with every call for this attempt")
    attempt: int
    build_id: int
    build: str = Field(description="SOURCE_VERSION")
    source: str
    version: str
    arch: str
    build_what: Literal["binary", "arch", "indep"] = Field(description="dpkg-buildpackage -b, -B or -A")
    dsc: str | None
    files: list[ClaimFile]
    build_tag: str
    tag_repo: TagRepoRef
    external_repos: list[ExternalRepoRef] = Field(description="in inheritance order; the first is the base")
    lease_seconds: float
    heartbeat_seconds: float
    plugins: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="deb-mock plugins to enable, with their options (the target's and the "
                                          "request's); a builder runs only those its own config allows")
    disable_plugins: list[str] = Field(
        default_factory=list, description="deb-mock plugins to switch off (deb-mock --disable-plugin), also those the "
                                          "builder's own config enables")


class NoopClaim(Wire):
    """A task that does nothing: the builder closes it at once (scheduler tests, benchmarks)."""

    task_id: int
    fence: int
    attempt: int
    method: Literal[TaskMethod.NOOP]
    arch: str
    lease_seconds: float
    heartbeat_seconds: float


Claim = Annotated[BuildClaim | NoopClaim, Field(discriminator="method")]
CLAIM: TypeAdapter[BuildClaim | NoopClaim] = TypeAdapter(Claim)


class HeartbeatOut(Wire):
    cancel: bool = Field(description="the task was canceled: stop building it")
    lease_expires: float | None


class UploadOut(Wire):
    name: str
    sha256: str
    size: int


class CompleteOut(Wire):
    task: int
    state: TaskState
    requeued: bool
    build_state: BuildState | None = Field(description="the build's new state, when this changed it")


class CompleteAndClaimOut(Wire):
    completed: CompleteOut
    next: Claim | None


class ReleaseOut(Wire):
    task: int
    state: TaskState


class NoopOut(Wire):
    tasks: list[int]


# ---------------------------------------------------------------------- tasks and builds
class TaskOut(Wire):
    id: int
    parent_id: int | None
    build_id: int | None
    method: TaskMethod
    arch: str
    build_what: str
    state: TaskState
    priority: int
    owner: str
    host: str | None
    attempts: int
    max_attempts: int
    error: str | None
    created: float
    started: float | None
    completed: float | None
    missing: list[Any]


class TaskFile(Wire):
    name: str
    kind: str
    sha256: str
    size: int


class TaskDetail(TaskOut):
    result: dict[str, Any] | None
    buildroot: list[Any]
    fence: int
    lease_expires: float | None
    log_tail: str
    children: list[TaskOut]
    files: list[TaskFile]
    plugins: dict[str, Any] = Field(default_factory=dict, description="each deb-mock plugin's results "
                                                                      "(result.json's plugins, bounded in size)")


class CancelOut(Wire):
    canceled_tasks: list[int]


class BuildOut(Wire):
    id: int
    ident: str = Field(description="SOURCE_VERSION")
    source: str
    version: str
    state: BuildState
    owner: str
    requested_by: str
    target: str | None
    task_id: int | None
    architectures: str
    created: float
    completed: float | None
    source_trust: str | None
    source_verified: bool
    source_verification: str | None


class BuildFile(TaskFile):
    task_id: int | None


class BuildPackage(Wire):
    name: str
    version: str
    arch: str
    filename: str


class BuildDetail(BuildOut):
    tasks: list[TaskOut]
    files: list[BuildFile]
    packages: list[BuildPackage]
    buildroots: dict[str, list[Any]] = Field(description="buildArch task ID → its buildroot's packages")
    plugins: dict[str, dict[str, Any]] = Field(default_factory=dict,
                                               description="the deb-mock plugins its builds run, with options")
    disable_plugins: list[str] = Field(default_factory=list,
                                       description="the deb-mock plugins its builds switch off")
    plugin_results: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="buildArch task ID → each plugin's results (bounded in size)")


class TaggedBuild(BuildOut):
    tag: str = Field(description="the tag it comes from (through inheritance)")


class SubmitOut(Wire):
    existing: bool = Field(description="this source version was submitted before: its build and task")
    message: str
    build: BuildOut
    task: TaskOut


class ResubmitOut(Wire):
    build: BuildOut
    task: TaskOut


class BuildCancelOut(Wire):
    build: str
    canceled_tasks: list[int]


# ---------------------------------------------------------------------- tags, targets, repos
class ExternalRepoOut(Wire):
    url: str
    suite: str
    components: list[str]
    has_key: bool


class TagOut(Wire):
    id: int
    name: str
    arches: list[str]
    parents: list[str]
    inheritance: list[str]
    external_repos: list[ExternalRepoOut]
    created: float


class TagRemoved(Wire):
    tag: str
    deleted: bool
    untagged_builds: list[str]
    children_detached: list[str]
    repo_removed: bool


class TagBuildOut(Wire):
    tag: str
    build: str


class TargetOut(Wire):
    id: int
    name: str
    build_tag: str
    dest_tag: str
    plugins: dict[str, dict[str, Any]] = Field(default_factory=dict,
                                               description="deb-mock plugins its builds run, with options")
    request_plugins: list[str] = Field(default_factory=list, description="plugins a build request may add")
    disable_plugins: list[str] = Field(default_factory=list,
                                       description="deb-mock plugins its builds switch off (--disable-plugin)")
    policy: dict[str, dict[str, Any]] = Field(default_factory=dict, description="hub plugins' per-target options")


class TargetRemoved(Wire):
    target: str
    deleted: bool
    builds_detached: list[str]


class RepoOut(Wire):
    tag: str
    generation: int
    state: RepoState
    dirty: bool
    builds: list[str]
    packages: int
    published: float | None
    seconds: float | None
    error: str | None


class RepoWaitOut(RepoOut):
    done: bool


# ---------------------------------------------------------------------- hosts, tokens, events
class HostOut(Wire):
    id: int
    name: str
    arches: list[str]
    capacity: int
    enabled: bool
    last_heartbeat: float | None
    running: list[int] = Field(description="the IDs of the tasks it runs")


class HostCreated(HostOut):
    token: str = Field(description="the host's builder token, shown once")


class WhoAmI(Wire):
    user: str
    scopes: list[str]
    host_id: int | None
    token_id: int | None


class TokenCreated(Wire):
    id: int
    user: str
    scopes: list[str]
    token: str = Field(description="the secret, shown once")


class TokenOut(Wire):
    id: int
    user: str
    name: str
    prefix: str
    scopes: list[str]
    revoked: bool
    created: float


class TokenRevoked(Wire):
    id: int
    revoked: bool


class EventOut(Wire):
    id: int
    ts: float
    kind: str
    object_type: str
    object_id: int
    actor: str
    data: dict[str, Any]


class AuditObject(Wire):
    kind: str = Field(description="build, task, tag, target, repo, host or token; empty for a refused attempt")
    id: int | None = None
    name: str | None = Field(default=None, description="e.g. the build's SOURCE_VERSION, the tag's name")


class AuditOut(Wire):
    """One record of the audit log (docs/operations.md)."""

    id: int
    ts: float = Field(description="seconds since the epoch")
    time: str = Field(description="the same, ISO 8601 in UTC")
    action: str = Field(description="an AuditAction: build.submit, tag.create, token.revoke…")
    outcome: str = Field(description="done (committed with the change) or refused (401, 403: nothing changed)")
    status: int | None = Field(default=None, description="the refusal's HTTP status")
    token_id: int | None = Field(default=None, description="the token used (known ones also when refused)")
    user: str | None = None
    client: str = Field(description="the client's address (proxy headers only from hub --trusted-proxy peers)")
    peer: str = Field(description="the address that connected to the hub (a proxy, or the client itself)")
    object: AuditObject
    changes: dict[str, Any] = Field(description="what changed: field -> [old, new] (null: did not exist)")
    reason: str | None = Field(default=None, description="why it was refused")
    count: int = Field(description="attempts this record stands for (refusals within the hub's window: >= 1)")
    last_ts: float | None = Field(default=None, description="the last of them")
    via: str = Field(default="api", description="api (the API, CLI) or web (an action in the hub's web pages)")
