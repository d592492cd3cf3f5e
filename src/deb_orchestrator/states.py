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
