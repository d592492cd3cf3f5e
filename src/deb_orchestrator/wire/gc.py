"""`deb-orchestrator gc` on the wire: the request (dry run, the retention overrides) and its report
(see :mod:`deb_orchestrator.wire`; docs/operations.md "Retention: deb-orchestrator gc")."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from deb_orchestrator.states import BuildState
from deb_orchestrator.wire.answers import Wire

DAYS = Field(default=None, ge=0, le=100_000)


class RetentionIn(BaseModel):
    """Overrides of the hub's retention for one gc call (days; unset: the hub's own setting)."""

    model_config = ConfigDict(extra="forbid")

    untagged_build_days: float | None = DAYS
    failed_build_days: float | None = DAYS
    log_days: float | None = DAYS
    event_days: float | None = DAYS
    audit_days: float | None = DAYS
    object_grace_days: float | None = DAYS
    tmp_days: float | None = DAYS


class GcIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dry_run: bool = Field(default=False, description="report what would go; change nothing")
    retention: RetentionIn = Field(default_factory=RetentionIn)
    keep_forever: list[str] = Field(
        default_factory=list, max_length=10,
        description="retention fields to treat as forever for this call (e.g. event_days), whatever the hub says")


class RetentionOut(Wire):
    """The retention a gc applied (days; null: kept forever)."""

    untagged_build_days: float | None
    failed_build_days: float | None
    log_days: float | None
    event_days: float | None
    audit_days: float | None
    object_grace_days: float
    tmp_days: float


class GcBuild(Wire):
    """A build marked deleted: its row stays (a source version is built once per hub), its files go."""

    id: int
    ident: str
    was: BuildState = Field(description="its state before gc")
    why: str
    files: int = Field(description="artifact rows dropped (their objects go unless another live build names them)")
    bytes: int


class GcLog(Wire):
    build: str
    task_id: int
    name: str
    size: int


class GcObject(Wire):
    sha256: str
    size: int


class GcFile(Wire):
    """A leftover in DATA/store/tmp."""

    name: str
    bytes: int


class GcReport(Wire):
    dry_run: bool
    retention: RetentionOut
    builds: list[GcBuild] = Field(description="builds marked deleted")
    logs: list[GcLog] = Field(description="log files dropped from kept builds in no tag")
    log_tails: int = Field(description="tasks whose log tail (in the database) was emptied")
    objects: list[GcObject] = Field(description="store objects removed: no live build's artifact names them")
    kept_objects: int = Field(description="unreferenced objects kept: too new (maybe an upload under way), or "
                                          "still hard-linked into a tag repository")
    tmp: list[GcFile]
    rows: dict[str, int] = Field(description="old rows deleted per table (events, webhook_deliveries, audit)")
    bytes: int = Field(description="the store objects' and tmp leftovers' bytes")
    seconds: float
