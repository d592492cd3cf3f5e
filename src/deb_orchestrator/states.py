"""The states of tasks, builds and tag repositories, and the methods of tasks: defined once for the hub,
its clients and the builder.

They are ``StrEnum`` values: each member *is* its string, so the database columns and the JSON on the wire
hold exactly the strings they always held (``"dep-wait"``, ``"buildArch"``…) and no migration is needed.
"""

from __future__ import annotations

from enum import StrEnum


class TaskState(StrEnum):
    FREE = "free"  # waiting for a builder
    OPEN = "open"  # claimed by a builder (leaf tasks) or waiting for its subtasks (build tasks)
    CLOSED = "closed"
    FAILED = "failed"
    CANCELED = "canceled"
    DEP_WAIT = "dep-wait"  # build-dependencies missing: continues when the build tag's repo changes


class BuildState(StrEnum):
    BUILDING = "building"
    COMPLETE = "complete"
    FAILED = "failed"
    CANCELED = "canceled"
    DEP_WAIT = "dep-wait"
    DELETED = "deleted"  # its files were collected by `deb-orchestrator gc`; the row stays (built once per hub)


class RepoState(StrEnum):
    PENDING = "pending"  # never published yet
    READY = "ready"
    FAILED = "failed"


class TaskMethod(StrEnum):
    BUILD = "build"  # the hub's own parent task of a build
    BUILD_ARCH = "buildArch"  # one architecture's build, claimed by a builder
    TAG = "tag"  # the record of tagging a finished build into its destination tag
    NOOP = "noop"  # does nothing: builders close it at once (scheduler tests, benchmarks)


FINAL_TASK_STATES = (TaskState.CLOSED, TaskState.FAILED, TaskState.CANCELED)
ACTIVE_TASK_STATES = (TaskState.FREE, TaskState.OPEN, TaskState.DEP_WAIT)
FINAL_BUILD_STATES = (BuildState.COMPLETE, BuildState.FAILED, BuildState.CANCELED, BuildState.DELETED)
ACTIVE_BUILD_STATES = (BuildState.BUILDING, BuildState.DEP_WAIT)
LEAF_METHODS = (TaskMethod.BUILD_ARCH, TaskMethod.NOOP)  # what builders claim


class AuditAction(StrEnum):
    """What an audit record is about (docs/operations.md): one stable name per state-changing API call, and the
    token-guarded reads whose refusals are recorded. Never renamed: scripts filter on them."""

    BUILD_SUBMIT = "build.submit"  # by URL or upload; also a version submitted before (changes: none)
    BUILD_CANCEL = "build.cancel"
    BUILD_RESUBMIT = "build.resubmit"
    BUILD_TAG = "build.tag"  # tag-build
    BUILD_UNTAG = "build.untag"  # untag-build
    TASK_CANCEL = "task.cancel"
    TASK_NOOP = "task.noop"  # no-op tasks queued (scheduler tests, benchmarks)
    TASK_CLAIM = "task.claim"  # the builder protocol: a task handed to a host
    TASK_UPLOAD = "task.upload"
    TASK_COMPLETE = "task.complete"
    TASK_RELEASE = "task.release"
    TASK_HEARTBEAT = "task.heartbeat"  # only refused heartbeats are recorded
    TAG_CREATE = "tag.create"
    TAG_EDIT = "tag.edit"
    TAG_REMOVE = "tag.remove"
    TARGET_CREATE = "target.create"
    TARGET_REMOVE = "target.remove"
    TARGET_EDIT = "target.edit"  # its plugins, the plugins a request may add, its policy
    REPO_REGEN = "repo.regen"
    HOST_CREATE = "host.create"
    HOST_EDIT = "host.edit"  # enable, disable, capacity
    TOKEN_CREATE = "token.create"
    TOKEN_REVOKE = "token.revoke"
    HUB_GC = "hub.gc"  # deb-orchestrator gc (a dry run changes nothing and is not recorded)
    WEBHOOK_CREATE = "webhook.create"
    WEBHOOK_REMOVE = "webhook.remove"
    SESSION_CREATE = "session.create"  # signing in to the web pages (a token exchanged for a session cookie)
    SESSION_END = "session.end"  # signing out
    # reads that need a token: only their refusals (401, 403) are recorded
    TOKEN_LIST = "token.list"
    WEBHOOK_LIST = "webhook.list"  # webhooks and their deliveries
    AUDIT_READ = "audit.read"
    WHOAMI = "auth.whoami"
    METRICS_SCRAPE = "metrics.scrape"


class AuditOutcome(StrEnum):
    DONE = "done"  # committed with the change
    REFUSED = "refused"  # 401 or 403: nothing changed
