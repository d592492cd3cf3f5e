"""The deb-mock plugins of targets and build requests as the hub checks them (docs/plugins.md,
"deb-orchestrator"): the options of deb-mock's own plugins with deb-mock's own rules (``deb_mock.api``), so a
wrong one is refused when it is given rather than failing a build later (deb-mock's exit 2); names a target
both enables and switches off are refused. Other names are third-party plugins, opaque to the hub: the builders
that allow them (``builder --allow-plugin``) check them."""

from __future__ import annotations

from typing import Any

from deb_mock.api import check_plugin_options
from deb_orchestrator.hub.errors import HubError


def check_options(plugins: dict[str, dict[str, Any]], where: str) -> None:
    problems = [p for name, options in plugins.items() for p in check_plugin_options(name, options)]
    if problems:
        raise HubError(f"{where}: {'; '.join(problems)}")


def check_names(names: list[str], where: str) -> None:
    check_options({name: {} for name in names}, where)


def check_fields(plugins: dict[str, dict[str, Any]] | None, request_plugins: list[str] | None,
                 disable_plugins: list[str] | None) -> None:
    """A target's plugin fields as given (None: not given): deb-mock's own plugins' options and names."""
    check_options(plugins or {}, "plugins")
    check_names(request_plugins or [], "request_plugins")
    check_names(disable_plugins or [], "disable_plugins")


def check_target(plugins: dict[str, dict[str, Any]], request_plugins: list[str], disable_plugins: list[str]) -> None:
    """A target's plugins as they will be stored (each field as given or as kept)."""
    both = sorted(set(disable_plugins) & {*plugins, *request_plugins})
    if both:
        raise HubError(f"disable_plugins: {', '.join(both)} also enabled (plugins) or allowed to requests "
                       "(request_plugins); a plugin is either switched on or off for a target's builds")


def check_request(plugins: dict[str, dict[str, Any]], target: str) -> None:
    check_options(plugins, f"build request for target {target}: plugins")
