"""``builder --plugin``/``--plugin-option``: the plugins this builder runs for every build, checked against the
deb-mock installed here (its plugins, their options) before the builder starts."""

from __future__ import annotations

from typing import Any

from deb_mock.api import check_plugin_options, plugin_names


def problems(plugins: dict[str, dict[str, Any]]) -> list[str]:
    """What is wrong with ``{NAME: {KEY: VALUE}}`` for this machine's deb-mock (empty: nothing)."""
    installed = plugin_names()
    found = [f"plugin {n}: not installed here (deb-mock has {', '.join(installed)})" for n in plugins
             if n not in installed]
    return found + [p for n, o in plugins.items() if n in installed for p in check_plugin_options(n, o)]
