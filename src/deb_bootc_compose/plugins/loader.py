"""Which plugins a compose runs: the built-in ones (on unless the manifest says ``NAME: false``) and the
installed ``deb_bootc_compose.plugins`` entry points the manifest names (``plugins: {NAME: {…}}``)."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from deb_bootc_compose.hookspec import ENTRY_POINT_GROUP, enabled_plugins
from deb_bootc_compose.manifest import Manifest
from deb_bootc_compose.plugins.api import Plugin, PluginLoadError


def _builtin(name: str) -> type[Plugin] | None:
    if name == "sbom":
        from deb_bootc_compose.plugins.sbom import SbomPlugin

        return SbomPlugin
    return None


def _installed(name: str) -> Any:
    found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    if not found:
        raise PluginLoadError(f"plugin {name}: no '{ENTRY_POINT_GROUP}' entry point of that name is installed")
    try:
        return found[0].load()
    except Exception as exc:  # an installed package that does not import: say which
        raise PluginLoadError(f"plugin {name}: cannot load {found[0].value}: {type(exc).__name__}: {exc}") from exc


def load(manifest: Manifest) -> list[tuple[str, Plugin]]:
    """(name, plugin) of every plugin the manifest enables, made with its options, built-in ones first."""
    plugins: list[tuple[str, Plugin]] = []
    for name, options in enabled_plugins(manifest.plugins).items():
        factory = _builtin(name) or _installed(name)
        try:
            plugin = factory(options)
        except (ValueError, TypeError) as exc:
            raise PluginLoadError(f"plugin {name}: bad options {options!r}: {exc}") from exc
        if not callable(getattr(plugin, "before", None)) or not callable(getattr(plugin, "after", None)):
            raise PluginLoadError(f"plugin {name}: {factory!r} made no plugin (it needs before() and after() methods; "
                              "subclass deb_bootc_compose.plugins.api.Plugin)")
        plugins.append((name, plugin))
    return plugins
