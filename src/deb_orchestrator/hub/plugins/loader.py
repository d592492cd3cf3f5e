"""Which hub plugins a hub runs: its own (:data:`BUILTIN`, always) and those other distributions register in the
entry point group ``deb_orchestrator.plugins`` (``NAME = "module:Class"``) that the hub's config names
(``hub --plugin NAME``). Nothing else is imported: installing a distribution does not put code into the hub."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from pydantic import ValidationError

from deb_orchestrator.hub.plugins.api import HubPlugin, HubPluginOptions
from deb_orchestrator.hub.plugins.lintian_gate import LintianGate
from deb_orchestrator.wire.plugins import PLUGIN_NAME

GROUP = "deb_orchestrator.plugins"
BUILTIN: dict[str, type[HubPlugin]] = {"lintian-gate": LintianGate}


class PluginError(Exception):
    """A hub plugin the config names cannot be loaded, or its options are wrong: the hub does not start."""


def options_of(cls: type[HubPluginOptions], values: dict[str, Any], what: str) -> HubPluginOptions:
    try:
        return cls.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(x) for x in e['loc']) or 'options'}: {e['msg']}" for e in exc.errors())
        raise PluginError(f"{what}: invalid options: {problems}") from None


def _third_party(name: str) -> type[HubPlugin]:
    found = {ep.name: ep for ep in entry_points(group=GROUP)}
    if name not in found:
        known = ", ".join(sorted(set(found) | set(BUILTIN))) or "none"
        raise PluginError(f"hub plugin {name}: not installed (no entry point {name} in the group {GROUP}; "
                          f"installed: {known})")
    try:
        obj = found[name].load()
    except Exception as exc:  # whatever the import raised: the hub refuses to start, saying why
        raise PluginError(f"hub plugin {name}: cannot load {found[name].value}: {type(exc).__name__}: {exc}") from None
    if not (isinstance(obj, type) and issubclass(obj, HubPlugin)):
        raise PluginError(f"hub plugin {name}: {found[name].value} is not a deb_orchestrator.hub.plugins.HubPlugin")
    if obj.name != name:
        raise PluginError(f"hub plugin {name}: {found[name].value} calls itself {obj.name!r}")
    return obj


def load(enabled: dict[str, dict[str, Any]]) -> list[HubPlugin]:
    """The built-in plugins and the enabled third-party ones (``{NAME: options}``), in that order."""
    for name in enabled:
        if not PLUGIN_NAME.match(name):
            raise PluginError(f"hub plugin {name!r}: not a plugin name")
    plugins: list[HubPlugin] = []
    for name, cls in BUILTIN.items():
        plugins.append(cls(options_of(cls.Options, enabled.get(name, {}), f"hub plugin {name}")))
    for name, values in enabled.items():
        if name in BUILTIN:
            continue
        cls = _third_party(name)
        plugins.append(cls(options_of(cls.Options, values, f"hub plugin {name}")))
    return plugins
