"""Which plugins a build runs, with which options.

Plugins are deb-mock's own (:data:`BUILTIN`) and those other distributions register in the entry point group
``deb_mock.plugins`` (``NAME = "module:Class"``). A plugin runs when it is enabled: by default (deb-mock's own
``default_enabled`` ones), by its config table (``[plugins.NAME]`` with ``enabled = true``/``false``) or by
the run (``--enable-plugin NAME`` / ``--disable-plugin NAME``, which win). Options come from the config table,
then ``--plugin-option NAME:KEY=VALUE``; they are checked against the plugin's ``Options`` before the build
starts (a wrong one is exit 2). Third-party plugins are imported only when enabled.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from pydantic import ValidationError

from deb_mock.errors import BadInput
from deb_mock.plugins.base import Plugin, PluginOptions

GROUP = "deb_mock.plugins"
BUILTIN = {
    "tmpfs": "deb_mock.plugins.tmpfs:TmpfsPlugin",
    "lintian": "deb_mock.plugins.lintian:LintianPlugin",
    "autopkgtest": "deb_mock.plugins.autopkgtest:AutopkgtestPlugin",
    "sign": "deb_mock.plugins.sign:SignPlugin",
    "ccache": "deb_mock.plugins.ccache:CcachePlugin",
    "piuparts": "deb_mock.plugins.piuparts:PiupartsPlugin",
}
# deb-mock's own plugins that run unless disabled (their classes' ``default_enabled``; a test checks the two
# agree): known without importing the other plugins' modules, which a build that does not enable them never needs
DEFAULT_ENABLED = frozenset({"tmpfs"})
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,40}$")
RESERVED = ("build", "root", "state", "result")  # their logs are deb-mock's own


@dataclass(frozen=True)
class Enabled:
    plugin: Plugin
    options: PluginOptions

    @property
    def name(self) -> str:
        return self.plugin.name


def available() -> dict[str, str]:
    """Every plugin name with where it comes from (``module:Class``); deb-mock's own win over others."""
    found = {ep.name: ep.value for ep in entry_points(group=GROUP) if _NAME.match(ep.name)}
    found.update(BUILTIN)
    return dict(sorted(found.items()))


def _load(name: str, target: str) -> type[Plugin]:
    module, _, attr = target.partition(":")
    try:
        obj = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise BadInput(f"plugin {name}: cannot load {target}: {exc}") from None
    if not (isinstance(obj, type) and issubclass(obj, Plugin)):
        raise BadInput(f"plugin {name}: {target} is not a deb_mock.plugins.Plugin subclass")
    if obj.name != name:
        raise BadInput(f"plugin {name}: {target} calls itself {obj.name!r}")
    return obj


def _default_enabled(name: str) -> bool:
    return name in DEFAULT_ENABLED


def _options(cls: type[Plugin], values: dict[str, Any]) -> PluginOptions:
    try:
        return cls.Options.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(x) for x in e['loc']) or 'options'}: {e['msg']}" for e in exc.errors())
        raise BadInput(f"plugin {cls.name}: invalid options: {problems}") from None


def select(
    tables: dict[str, dict[str, Any]],
    enable: list[str],
    disable: list[str],
    options: dict[str, dict[str, Any]],
) -> list[Enabled]:
    """The enabled plugins in their order, each with its checked options (:class:`BadInput` if wrong)."""
    named = [*tables, *enable, *disable, *options]
    # a third-party plugin runs only when named: without such a name the entry points need no scan
    known = available() if any(n not in BUILTIN for n in named) else dict(sorted(BUILTIN.items()))
    unknown = sorted({n for n in named if n not in known})
    if unknown:
        raise BadInput(
            f"unknown plugin(s): {', '.join(unknown)}; available: {', '.join(known)} "
            f"(third-party plugins register in the entry point group {GROUP})"
        )
    both = sorted(set(enable) & set(disable))
    if both:
        raise BadInput(f"--enable-plugin and --disable-plugin both name {', '.join(both)}")
    chosen = []
    for name, target in known.items():
        table = dict(tables.get(name, {}))
        on = table.pop("enabled", None)
        if not isinstance(on, bool | None):
            raise BadInput(f"[plugins.{name}] enabled: expected true or false, got {on!r}")
        enabled = name in enable or (name not in disable and (on if on is not None else _default_enabled(name)))
        if not enabled:
            continue
        if name in RESERVED:
            raise BadInput(f"plugin {name}: that name is reserved (its log would be deb-mock's {name}.log)")
        cls = _load(name, target)
        table.update(options.get(name, {}))
        chosen.append(Enabled(cls(), _options(cls, table)))
    return sorted(chosen, key=lambda e: (e.plugin.order, e.name))


def parse_option(text: str) -> tuple[str, str, Any]:
    """``NAME:KEY=VALUE`` (``--plugin-option``): VALUE is TOML, or a string if it is not valid TOML."""
    from deb_mock.config import ConfigError, parse_value

    name, sep, rest = text.partition(":")
    key, eq, value = rest.partition("=")
    if not sep or not eq or not _NAME.match(name) or not re.match(r"^[A-Za-z0-9_-]+$", key.strip()):
        raise BadInput(f"--plugin-option {text!r}: expected NAME:KEY=VALUE (e.g. lintian:fail-on=warning)")
    try:
        return name, key.strip(), parse_value(value.strip(), f"--plugin-option {text!r}")
    except ConfigError as exc:
        raise BadInput(str(exc)) from None


def option_problems(name: str, options: dict[str, Any]) -> list[str]:
    """What is wrong with ``options`` for plugin ``name`` as a build would check them (its ``Options`` model),
    each naming the plugin, the option and what it takes; empty when they are fine. Only deb-mock's own plugins
    are checked (nothing third-party is imported): any other name gives no problem unless it is a near-copy of a
    built-in name (a typo such as ``lintan``). A required option that is missing is no problem here: the config
    table of the machine that builds may give it."""
    if name not in BUILTIN:
        import difflib

        close = difflib.get_close_matches(name, BUILTIN, n=1, cutoff=0.8)
        if close:
            return [f"unknown plugin {name!r}: did you mean {close[0]}? (deb-mock's own plugins: "
                    f"{', '.join(sorted(BUILTIN))}; a third-party plugin's name must not be a near-copy of one)"]
        return []
    cls = _load(name, BUILTIN[name])
    fields = cls.Options.model_fields
    known = ", ".join(info.alias or f for f, info in fields.items()) or "none"
    try:
        cls.Options.model_validate(options)
    except ValidationError as exc:
        problems = []
        for e in exc.errors():
            key = ".".join(str(x) for x in e["loc"]) or "options"
            if e["type"] == "missing":
                continue
            if e["type"] == "extra_forbidden":
                problems.append(f"plugin {name}: unknown option {key!r} (its options: {known})")
            else:
                why = e["msg"].removeprefix("Value error, ")
                problems.append(f"plugin {name}: option {key}={e.get('input')!r}: {why}")
        return problems
    return []
