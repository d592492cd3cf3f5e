"""The hub's plugin interface (docs/plugins.md, "deb-orchestrator"): callbacks in Koji's spirit.

A hub plugin is a subclass of :class:`HubPlugin` with a ``name`` and any of the hook methods. ``before_tag``
is a policy hook: it refuses a tagging by raising :class:`TagRefused` (the refusal is the answer of tag-build,
or the error of a build's tag task when the hub tags a finished build). The other hooks are told after the
change was committed; an error there is logged and changes nothing. Hooks get plain, frozen records, never
database objects: a plugin reads what happened, it does not change the hub's state behind its back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict


def _dashed(name: str) -> str:
    return name.replace("_", "-")


class HubPluginOptions(BaseModel):
    """Options of a hub plugin (``hub --plugin-option NAME:KEY=VALUE``) or its per-target options (a target's
    ``policy``, ``add-target --policy NAME:KEY=VALUE``). Unknown keys are refused; ``-`` and ``_`` both work."""

    model_config = ConfigDict(extra="forbid", alias_generator=_dashed, populate_by_name=True, frozen=True)


class TagRefused(Exception):
    """Raised by ``before_tag``: the build is not tagged; the message says why (shown to the user as is)."""


@dataclass(frozen=True)
class BuildInfo:
    """A build as hooks see it. ``plugin_results`` is per architecture of its buildArch tasks: ``{"amd64":
    {"lintian": {…}}}`` (result.json's ``plugins`` of each, bounded in size by the hub)."""

    id: int
    ident: str  # SOURCE_VERSION
    source: str
    version: str
    state: str  # a BuildState
    owner: str
    target: str | None
    plugins: dict[str, dict[str, Any]]  # the deb-mock plugins its builds ran, with options
    plugin_results: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class TargetPolicy:
    """A target whose destination tag is the tag in question, with its options for this plugin (the plugin's
    ``TargetOptions``, or None when the target names none)."""

    target: str
    options: Any


@dataclass(frozen=True)
class TagEvent:
    tag: str
    build: BuildInfo
    actor: str  # who tags: a user, or "hub" when the hub tags a finished build into its target's destination
    policies: tuple[TargetPolicy, ...] = ()  # targets landing in this tag that give this plugin options


@dataclass(frozen=True)
class RepoEvent:
    tag: str
    generation: int
    packages: int
    builds: tuple[str, ...]  # SOURCE_VERSION of every build the repository holds


class HubPlugin:
    """Override the hooks you need. ``options`` is an instance of ``Options`` (from the hub's config)."""

    name: ClassVar[str] = ""
    Options: ClassVar[type[HubPluginOptions]] = HubPluginOptions
    TargetOptions: ClassVar[type[HubPluginOptions] | None] = None  # None: targets cannot give it options

    def __init__(self, options: HubPluginOptions) -> None:
        self.options = options

    def before_tag(self, event: TagEvent) -> None:
        """Before a build is tagged (policy): raise TagRefused to refuse. In the tagging's transaction."""

    def after_tag(self, event: TagEvent) -> None:
        """After a tagging was committed."""

    def build_done(self, build: BuildInfo) -> None:
        """After a build ended (``state`` complete or failed) and that was committed."""

    def repo_published(self, repo: RepoEvent) -> None:
        """After a tag's repository was published (a new generation is served)."""
