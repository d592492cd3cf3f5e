"""Database models (SQLAlchemy 2, typed). Timestamps are seconds since the epoch (float) everywhere."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from deb_orchestrator.states import RepoState, TaskState


def now() -> float:
    return time.time()


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created: Mapped[float] = mapped_column(Float, default=now)


class Token(Base):
    """An API token. Only its SHA-256 is stored; ``prefix`` (first characters) helps people recognise it."""

    __tablename__ = "tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    host_id: Mapped[int | None] = mapped_column(ForeignKey("hosts.id"), nullable=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    scopes: Mapped[str] = mapped_column(String(200))  # comma separated: admin,build,tag,builder
    created: Mapped[float] = mapped_column(Float, default=now)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    user: Mapped[User] = relationship()


class Host(Base):
    __tablename__ = "hosts"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    arches: Mapped[str] = mapped_column(String(200))  # space separated Debian arch names
    capacity: Mapped[int] = mapped_column(Integer, default=1)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    last_heartbeat: Mapped[float | None] = mapped_column(Float, nullable=True)
    created: Mapped[float] = mapped_column(Float, default=now)


class Tag(Base):
    __tablename__ = "tags"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    arches: Mapped[str] = mapped_column(String(200), default="amd64")
    created: Mapped[float] = mapped_column(Float, default=now)


class TagParent(Base):
    """Ordered inheritance: ``priority`` 0 is looked at first."""

    __tablename__ = "tag_parents"
    __table_args__ = (UniqueConstraint("tag_id", "parent_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    tag_id: Mapped[int] = mapped_column(ForeignKey("tags.id", ondelete="CASCADE"), index=True)
    parent_id: Mapped[int] = mapped_column(ForeignKey("tags.id", ondelete="CASCADE"))
    priority: Mapped[int] = mapped_column(Integer, default=0)


class ExternalRepo(Base):
    """An apt repository outside the hub (e.g. the Debian mirror) a tag's buildroots use; never published."""

    __tablename__ = "external_repos"
    id: Mapped[int] = mapped_column(primary_key=True)
    tag_id: Mapped[int] = mapped_column(ForeignKey("tags.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(500))
    suite: Mapped[str] = mapped_column(String(100))
    components: Mapped[str] = mapped_column(String(200), default="main")
    key: Mapped[str | None] = mapped_column(Text, nullable=True)
    priority: Mapped[int] = mapped_column(Integer, default=0)


class Target(Base):
    __tablename__ = "targets"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    build_tag_id: Mapped[int] = mapped_column(ForeignKey("tags.id"))
    dest_tag_id: Mapped[int] = mapped_column(ForeignKey("tags.id"))
    build_tag: Mapped[Tag] = relationship(foreign_keys=[build_tag_id])
    dest_tag: Mapped[Tag] = relationship(foreign_keys=[dest_tag_id])
    # plugins (migration 0008, docs/plugins.md): deb-mock plugins its builds run {NAME: {OPTION: VALUE}}, those a
    # build request may add, and hub plugins' per-target options ({"lintian-gate": {"refuse-on": "error"}})
    plugins: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    request_plugins: Mapped[list[Any]] = mapped_column(JSON, default=list)
    policy: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # deb-mock plugins its builds switch off (deb-mock --disable-plugin), e.g. one a builder's config enables
    # (migration 0009)
    disable_plugins: Mapped[list[Any]] = mapped_column(JSON, default=list)


class Build(Base):
    """One source version, built once per hub. ``ident`` is ``SOURCE_VERSION`` (epoch dropped)."""

    __tablename__ = "builds"
    id: Mapped[int] = mapped_column(primary_key=True)
    ident: Mapped[str] = mapped_column(String(300), unique=True)
    source: Mapped[str] = mapped_column(String(200), index=True)
    version: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(20), index=True)  # a BuildState
    owner: Mapped[str] = mapped_column(String(200))
    requested_by: Mapped[str] = mapped_column(String(300), default="")
    target_id: Mapped[int | None] = mapped_column(ForeignKey("targets.id"), nullable=True)
    task_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    architectures: Mapped[str] = mapped_column(String(300), default="")
    source_stanza: Mapped[str] = mapped_column(Text, default="")  # Sources paragraph (without Directory)
    # how the hub authenticated the source (migration 0003): archive, signature, caller, none ("": unknown)
    source_trust: Mapped[str] = mapped_column(String(20), default="", server_default="")
    source_verification: Mapped[str] = mapped_column(Text, default="", server_default="")
    created: Mapped[float] = mapped_column(Float, default=now)
    completed: Mapped[float | None] = mapped_column(Float, nullable=True)
    # when it last left a tag (untag-build, remove-tag; migration 0004): gc's untagged age counts from here
    untagged: Mapped[float | None] = mapped_column(Float, nullable=True)
    # the deb-mock plugins its builds run, decided at submission: the target's and the request's (migration 0008)
    plugins: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    disable_plugins: Mapped[list[Any]] = mapped_column(JSON, default=list)  # and those they switch off (0009)
    target: Mapped[Target | None] = relationship()


class Artifact(Base):
    """A file belonging to a build: source files, .debs, .buildinfo, .changes, logs, result.json."""

    __tablename__ = "artifacts"
    __table_args__ = (UniqueConstraint("build_id", "task_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    build_id: Mapped[int] = mapped_column(ForeignKey("builds.id", ondelete="CASCADE"), index=True)
    task_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    name: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(20))  # source deb log buildinfo changes result other
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)


class BinaryPackage(Base):
    """A .deb of a completed build with its Packages stanza, so repos are written without re-reading .debs."""

    __tablename__ = "binary_packages"
    id: Mapped[int] = mapped_column(primary_key=True)
    build_id: Mapped[int] = mapped_column(ForeignKey("builds.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    version: Mapped[str] = mapped_column(String(200))
    arch: Mapped[str] = mapped_column(String(50))
    filename: Mapped[str] = mapped_column(String(300))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    stanza: Mapped[str] = mapped_column(Text)


class TagListing(Base):
    __tablename__ = "tag_listings"
    __table_args__ = (UniqueConstraint("tag_id", "build_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    tag_id: Mapped[int] = mapped_column(ForeignKey("tags.id", ondelete="CASCADE"), index=True)
    build_id: Mapped[int] = mapped_column(ForeignKey("builds.id", ondelete="CASCADE"), index=True)
    created: Mapped[float] = mapped_column(Float, default=now)
    by: Mapped[str] = mapped_column(String(200), default="")


class Task(Base):
    """A unit of work. ``build`` tasks are the hub's own; ``buildArch`` tasks are claimed by builders.

    ``fence`` grows on every claim; a builder must present the value it got, so a late answer from an
    attempt whose lease expired is refused.
    """

    __tablename__ = "tasks"
    __table_args__ = (  # the claim's queue order, free tasks only (migration 0002)
        Index("ix_tasks_free_queue", "priority", "id", postgresql_where=text(f"state = '{TaskState.FREE}'"),
              sqlite_where=text(f"state = '{TaskState.FREE}'")),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id"), nullable=True, index=True)
    build_id: Mapped[int | None] = mapped_column(ForeignKey("builds.id"), nullable=True, index=True)
    method: Mapped[str] = mapped_column(String(20))  # a TaskMethod
    arch: Mapped[str] = mapped_column(String(50), default="")
    build_what: Mapped[str] = mapped_column(String(10), default="binary")
    state: Mapped[str] = mapped_column(String(20), index=True)  # a TaskState
    priority: Mapped[int] = mapped_column(Integer, default=20)  # lower runs first
    owner: Mapped[str] = mapped_column(String(200), default="")
    host_id: Mapped[int | None] = mapped_column(ForeignKey("hosts.id"), nullable=True)
    fence: Mapped[int] = mapped_column(Integer, default=0)
    lease_expires: Mapped[float | None] = mapped_column(Float, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    excluded_hosts: Mapped[list[Any]] = mapped_column(JSON, default=list)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    missing: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    buildroot: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    plugins: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # plugin results (bounded; 0008)
    log_tail: Mapped[str] = mapped_column(Text, default="")
    created: Mapped[float] = mapped_column(Float, default=now, index=True)
    started: Mapped[float | None] = mapped_column(Float, nullable=True)
    completed: Mapped[float | None] = mapped_column(Float, nullable=True)
    host: Mapped[Host | None] = relationship()


class Repo(Base):
    """The published apt repository of a tag: ``generation`` grows on every publication."""

    __tablename__ = "repos"
    id: Mapped[int] = mapped_column(primary_key=True)
    tag_id: Mapped[int] = mapped_column(ForeignKey("tags.id", ondelete="CASCADE"), unique=True)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(20), default=RepoState.PENDING)  # a RepoState
    dirty: Mapped[bool] = mapped_column(Boolean, default=True)
    build_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    package_count: Mapped[int] = mapped_column(Integer, default=0)
    published: Mapped[float | None] = mapped_column(Float, nullable=True)
    seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


class Event(Base):
    """Every state change, in order."""

    __tablename__ = "events"
    id: Mapped[int] = mapped_column(primary_key=True)
    ts: Mapped[float] = mapped_column(Float, default=now)
    kind: Mapped[str] = mapped_column(String(50), index=True)
    object_type: Mapped[str] = mapped_column(String(20))
    object_id: Mapped[int] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(200), default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Webhook(Base):
    """An HTTP endpoint told about events (docs/operations.md). ``events`` holds the patterns wrapped in commas
    (``,build.complete,repo.*,``) so that the outbox's INSERT … SELECT matches them with LIKE (events.py)."""

    __tablename__ = "webhooks"
    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    events: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(500))  # the HMAC key; never answered by the API
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created: Mapped[float] = mapped_column(Float, default=now)


class WebhookDelivery(Base):
    """The outbox: one row per event and matching webhook, written in the event's transaction; the sender
    (webhooks.py) posts ``body`` until the receiver answers 2xx or the attempts run out."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_due", "state", "next_attempt"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"), index=True)
    event_id: Mapped[int] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(String(100), unique=True)  # the idempotency key (header)
    kind: Mapped[str] = mapped_column(String(50))
    body: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(20), default="pending")  # pending, delivered, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt: Mapped[float] = mapped_column(Float, default=now)
    last_attempt: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created: Mapped[float] = mapped_column(Float, default=now)


class Lease(Base):
    """A named lease one hub process holds at a time (e.g. the webhook sender), taken and renewed by UPDATE."""

    __tablename__ = "hub_leases"
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires: Mapped[float] = mapped_column(Float)


class AuditRecord(Base):
    """Who did what, from where (hub/audit.py): written in the transaction of the change it records, so a change
    that rolled back leaves none. Refused attempts (401, 403) are recorded too, at most one per client address,
    action and status within the hub's window, counting the others (``count``, ``last_ts``)."""

    __tablename__ = "audit"
    __table_args__ = (Index("ix_audit_object", "object_kind", "object_name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    ts: Mapped[float] = mapped_column(Float, default=now, index=True)
    action: Mapped[str] = mapped_column(String(40), index=True)  # an AuditAction
    outcome: Mapped[str] = mapped_column(String(10))  # an AuditOutcome
    status: Mapped[int | None] = mapped_column(Integer, nullable=True)  # the refusal's HTTP status
    token_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # no foreign key: records outlive tokens
    user_name: Mapped[str | None] = mapped_column(String(200), nullable=True, index=True)
    client: Mapped[str] = mapped_column(String(100))  # the client's address (through trusted proxies)
    peer: Mapped[str] = mapped_column(String(100))  # the address the hub's socket saw
    object_kind: Mapped[str] = mapped_column(String(20), default="")
    object_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    object_name: Mapped[str | None] = mapped_column(String(300), nullable=True)
    changes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # field -> [old, new]
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)  # why it was refused
    count: Mapped[int] = mapped_column(Integer, default=1)  # refused attempts this record stands for
    last_ts: Mapped[float | None] = mapped_column(Float, nullable=True)  # the last of them
    via: Mapped[str] = mapped_column(String(10), default="api", server_default="api")  # api or web (pages)


class WebSession(Base):
    """A signed-in browser (hub/web/session.py): made by exchanging an API token for a cookie. Only the cookie's
    SHA-256 is stored; the session acts with its token's user and scopes and dies with the token (every request
    reads the token's row) or when it expires or signs out. ``csrf``: the secret its forms carry."""

    __tablename__ = "web_sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_id: Mapped[int] = mapped_column(ForeignKey("tokens.id", ondelete="CASCADE"), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created: Mapped[float] = mapped_column(Float, default=now)
    expires: Mapped[float] = mapped_column(Float, index=True)
