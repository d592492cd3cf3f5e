"""Request bodies of the hub's REST API (see :mod:`deb_orchestrator.wire`)."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, Field, field_validator

from deb_orchestrator.wire.plugins import PluginMap, PluginNames

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$")
_ARCH = re.compile(r"^[a-z0-9][a-z0-9-]{0,30}$")


def _check_name(value: str, what: str) -> str:
    if not _NAME.match(value):
        raise ValueError(f"invalid {what} {value!r}: use letters, digits and . _ + - (at most 100, no '/')")
    return value


def _check_arches(values: list[str]) -> list[str]:
    for a in values:
        if not _ARCH.match(a) or a == "all":
            raise ValueError(f"invalid architecture {a!r}: use Debian names such as amd64, arm64")
    return values


class ExternalRepoIn(BaseModel):
    url: str = Field(pattern=r"^https?://[^\s]+$", max_length=500, description="e.g. http://deb.debian.org/debian")
    suite: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._/+-]*$", max_length=100)
    components: list[str] = Field(default_factory=lambda: ["main"], min_length=1, max_length=10)
    key: str | None = Field(default=None, max_length=100_000, description="ASCII-armoured signing key (optional)")

    @field_validator("components")
    @classmethod
    def _components(cls, v: list[str]) -> list[str]:
        return [_check_name(c, "component") for c in v]


class TagIn(BaseModel):
    name: str
    arches: list[str] = Field(default_factory=lambda: ["amd64"], min_length=1, max_length=20)
    parents: list[str] = Field(default_factory=list, max_length=50, description="in inheritance order")
    external_repos: list[ExternalRepoIn] = Field(default_factory=list, max_length=20)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _check_name(v, "tag name")

    @field_validator("arches")
    @classmethod
    def _arches(cls, v: list[str]) -> list[str]:
        return _check_arches(v)


class TagUpdate(BaseModel):
    parents: list[str] | None = Field(default=None, max_length=50)
    external_repos: list[ExternalRepoIn] | None = Field(default=None, max_length=20)
    arches: list[str] | None = Field(default=None, min_length=1, max_length=20)

    @field_validator("arches")
    @classmethod
    def _arches(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else _check_arches(v)


_PLUGINS = ("deb-mock plugins every build of the target runs, with their options (NAME -> {OPTION: VALUE}, as "
            "deb-mock's --plugin-option takes them); builders run only the plugins their own config allows")
_REQUEST_PLUGINS = "plugins a build request may add with options of its own (the target's options win)"
_DISABLE_PLUGINS = ("deb-mock plugins every build of the target runs without (deb-mock's --disable-plugin), also "
                    "those a builder's own config enables; none may be among plugins or request_plugins")
_POLICY = "per-target options of hub plugins, e.g. {\"lintian-gate\": {\"refuse-on\": \"error\"}}"


class TargetIn(BaseModel):
    name: str
    build_tag: str = Field(max_length=100)
    dest_tag: str = Field(max_length=100)
    plugins: PluginMap = Field(default_factory=dict, description=_PLUGINS)
    request_plugins: PluginNames = Field(default_factory=list, description=_REQUEST_PLUGINS)
    disable_plugins: PluginNames = Field(default_factory=list, description=_DISABLE_PLUGINS)
    policy: PluginMap = Field(default_factory=dict, description=_POLICY)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _check_name(v, "target name")


class TargetUpdate(BaseModel):
    """What to change (the fields given replace the target's)."""

    plugins: PluginMap | None = Field(default=None, description=_PLUGINS)
    request_plugins: PluginNames | None = Field(default=None, description=_REQUEST_PLUGINS)
    disable_plugins: PluginNames | None = Field(default=None, description=_DISABLE_PLUGINS)
    policy: PluginMap | None = Field(default=None, description=_POLICY)


class BuildIn(BaseModel):
    target: str = Field(max_length=100)
    source_url: str = Field(pattern=r"^https?://[^\s]+\.dsc$", max_length=1000,
                            description="http(s) URL of a .dsc; the hub downloads and verifies it and its files")
    arches: list[str] | None = Field(default=None, max_length=20)
    priority: int = Field(default=20, ge=0, le=1000, description="lower runs first")
    requested_by: str | None = Field(default=None, max_length=300,
                                     description="who asked for it, e.g. 'compose ID'; default: the source URL")
    plugins: PluginMap = Field(default_factory=dict, description="deb-mock plugins to add to the target's, with "
                                                                 "options; only those the target's request_plugins "
                                                                 "names")

    @field_validator("arches")
    @classmethod
    def _arches(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else _check_arches(v)


class TagBuildIn(BaseModel):
    build: str = Field(max_length=300, description="SOURCE_VERSION or numeric build ID")


class HostIn(BaseModel):
    name: str
    arches: list[str] = Field(min_length=1, max_length=20)
    capacity: int = Field(default=1, ge=1, le=256)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _check_name(v, "host name")

    @field_validator("arches")
    @classmethod
    def _arches(cls, v: list[str]) -> list[str]:
        return _check_arches(v)


class HostUpdate(BaseModel):
    enabled: bool | None = None
    capacity: int | None = Field(default=None, ge=1, le=256)


class TokenIn(BaseModel):
    user: str
    scopes: list[str] = Field(min_length=1, max_length=4)
    name: str = Field(default="", max_length=200)

    @field_validator("user")
    @classmethod
    def _user(cls, v: str) -> str:
        return _check_name(v, "user name")


class ClaimIn(BaseModel):
    arches: list[str] = Field(default_factory=list, max_length=20)
    capacity: int | None = Field(default=None, ge=1, le=256)
    wait: float = Field(default=30.0, ge=0, le=120, description="long-poll: seconds to wait for a task")


class HeartbeatIn(BaseModel):
    fence: int = Field(ge=0, le=2**31 - 1)
    log: list[str] = Field(default_factory=list, max_length=2000, description="new log lines since the last call")


class ResultFileIn(BaseModel):
    name: str = Field(max_length=300)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)


class MissingIn(BaseModel):
    relation: str = Field(max_length=2000)
    packages: list[str] = Field(default_factory=list, max_length=100)


class BuildrootPackageIn(BaseModel):
    package: str = Field(max_length=200)
    version: str = Field(max_length=200)
    arch: str = Field(max_length=50)


class ResultIn(BaseModel, extra="allow"):
    """deb-mock's result.json (DESIGN.md, "Contracts"); unknown fields are kept."""

    state: str = Field(default="error", max_length=20)
    exit_code: int = Field(ge=0, le=255)
    source: dict[str, str] = Field(default_factory=dict)
    arch: str = Field(default="", max_length=50)
    files: list[ResultFileIn] = Field(default_factory=list, max_length=1000)
    missing: list[MissingIn] = Field(default_factory=list, max_length=200)
    buildroot: list[BuildrootPackageIn] = Field(default_factory=list, max_length=20_000)
    error: str | None = Field(default=None, max_length=5000)
    plugins: dict[str, Any] = Field(default_factory=dict, description="each plugin's results; the hub keeps them "
                                                                      "bounded in size (wire/plugins.py)")


class CompleteIn(BaseModel):
    fence: int = Field(ge=0, le=2**31 - 1)
    result: ResultIn


class ReleaseIn(BaseModel):
    fence: int = Field(ge=0, le=2**31 - 1)
    reason: str = Field(default="builder stopping", max_length=500)


class NoopIn(BaseModel):
    count: int = Field(default=1, ge=1, le=10_000)
    arch: str = Field(default="amd64", pattern=r"^[a-z0-9][a-z0-9-]{0,30}$")
    priority: int = Field(default=20, ge=0, le=1000)


class CompleteAndClaimIn(CompleteIn):
    next: ClaimIn = Field(default_factory=ClaimIn, description="what to claim next: arches, capacity, wait "
                                                               "(long-poll seconds; 0 answers at once)")
