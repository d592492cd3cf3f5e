"""The manifest's ``hooks:`` and ``plugins:`` keys (docs/plugins.md)::

    hooks:
      before: {gather: ["echo starting"]}
      after: {ostree-commit: ["test -s \\"$DEB_BOOTC_COMPOSE_METADATA/sbom/base.amd64.spdx.json\\""]}
    plugins:
      sbom: {namespace: "https://sbom.example.org/spdx"}   # built in, on unless `sbom: false`
      mycheck: {}                                        # an installed plugin runs only when named here

Hook commands are shell command lines run with ``/bin/sh -e -c`` in a sandbox (:mod:`deb_bootc_compose.plugins.hooks`).
Phase names and plugin names are checked when the manifest is read; the error names the entry's own line.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Annotated, Any

from pydantic import BeforeValidator, Field
from pydantic_core import PydanticCustomError

from deb_bootc_compose.imagespec import StrictModel

ENTRY_POINT_GROUP = "deb_bootc_compose.plugins"
BUILTIN_PLUGINS = ("sbom",)  # on by default; `NAME: false` turns one off
MAX_COMMANDS = 64  # per phase and moment
MAX_COMMAND = 64 << 10


def installed_plugins() -> list[str]:
    """The names of the plugins installed through the ``deb_bootc_compose.plugins`` entry points."""
    return sorted({ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)})


def _phase_names() -> list[str]:
    from deb_bootc_compose.phases.order import NAMES  # the phases import the manifest: import when checking

    return NAMES


def _commands(v: Any) -> dict[str, list[str]]:
    if not isinstance(v, dict):
        raise ValueError("must be a mapping of phase names to lists of commands, e.g. {gather: [\"echo hi\"]}")
    names = _phase_names()
    out: dict[str, list[str]] = {}
    for phase, commands in v.items():
        if phase not in names:
            raise PydanticCustomError("hook_phase", "{message}", {
                "message": f"no phase {phase!r}: hooks run before or after one of {', '.join(names)}",
                "key": phase})
        if isinstance(commands, str):
            commands = [commands]
        if not isinstance(commands, list) or not all(isinstance(c, str) for c in commands):
            raise PydanticCustomError("hook_phase", "{message}", {
                "message": f"{phase}: a list of shell command lines is needed", "key": phase})
        if len(commands) > MAX_COMMANDS:
            raise PydanticCustomError("hook_phase", "{message}", {
                "message": f"{phase}: at most {MAX_COMMANDS} commands", "key": phase})
        for c in commands:
            if not c.strip() or "\0" in c or len(c) > MAX_COMMAND:
                raise PydanticCustomError("hook_phase", "{message}", {
                    "message": f"{phase}: {c[:40]!r}: a command line is not empty, holds no NUL byte and is at "
                               f"most {MAX_COMMAND} characters", "key": phase})
        out[str(phase)] = list(commands)
    return out


PhaseCommands = Annotated[dict[str, list[str]], BeforeValidator(_commands)]


class HooksSpec(StrictModel):
    before: PhaseCommands = Field(default_factory=dict)
    after: PhaseCommands = Field(default_factory=dict)

    def commands(self, when: str, phase: str) -> list[str]:
        return list((self.before if when == "before" else self.after).get(phase, []))


def _plugins(v: Any) -> dict[str, bool | dict[str, Any]]:
    if not isinstance(v, dict):
        raise ValueError("must be a mapping of plugin names to true, false or their options")
    known: list[str] | None = None
    out: dict[str, bool | dict[str, Any]] = {}
    for name, value in v.items():
        if name not in BUILTIN_PLUGINS:
            known = known if known is not None else installed_plugins()
            if name not in known:
                have = ", ".join([*BUILTIN_PLUGINS, *known])
                raise PydanticCustomError("plugin_name", "{message}", {
                    "message": f"no plugin {name!r} is installed (plugins here: {have}; third-party plugins come "
                               f"from the '{ENTRY_POINT_GROUP}' entry points)", "key": name})
        if value is None:
            value = {}
        if not isinstance(value, bool | dict):
            raise PydanticCustomError("plugin_name", "{message}", {
                "message": f"{name}: true, false or a mapping of options", "key": name})
        out[str(name)] = value
    return out


PluginSettings = Annotated[dict[str, bool | dict[str, Any]], BeforeValidator(_plugins)]


def enabled_plugins(settings: dict[str, bool | dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """name -> options of every plugin that runs: the built-in ones unless turned off, the others when named."""
    out: dict[str, dict[str, Any]] = {}
    for name in BUILTIN_PLUGINS:
        value = settings.get(name, True)
        if value is not False:
            out[name] = value if isinstance(value, dict) else {}
    for name, value in sorted(settings.items()):
        if name not in out and value is not False:
            out[name] = value if isinstance(value, dict) else {}
    return out
