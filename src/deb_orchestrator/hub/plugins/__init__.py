"""The hub's plugins (docs/plugins.md, "deb-orchestrator"): the interface third-party plugins import."""

from deb_orchestrator.hub.plugins.api import (
    BuildInfo,
    HubPlugin,
    HubPluginOptions,
    RepoEvent,
    TagEvent,
    TagRefused,
    TargetPolicy,
)

__all__ = ["BuildInfo", "HubPlugin", "HubPluginOptions", "RepoEvent", "TagEvent", "TagRefused", "TargetPolicy"]
