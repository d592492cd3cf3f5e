"""Plugin flags (docs/plugins.md, "deb-orchestrator"): ``--plugin NAME`` and ``--plugin-option NAME:KEY=VALUE``
as deb-mock spells them, for targets, build requests and the hub's own plugins; ``edit-target``."""

from __future__ import annotations

import argparse
import re
import tomllib
from typing import Any

from deb_orchestrator.cli.common import Arg, Subparsers, UsageError, add_query, arg
from deb_orchestrator.wire.plugins import PLUGIN_NAME

_OPTION = re.compile(r"^([a-z][a-z0-9_-]{0,40}):([A-Za-z][A-Za-z0-9_-]*)=(.*)$", re.S)


def plugin_args(what: str) -> list[Arg]:
    return [arg("--plugin", action="append", default=[], metavar="NAME", help=f"enable {what} (repeat)"),
            arg("--plugin-option", action="append", default=[], metavar="NAME:KEY=VALUE",
                help="an option of a plugin (VALUE is TOML, or text if it is not valid TOML; repeat); names the "
                     "plugin too")]


def value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse(names: list[str], options: list[str], flag: str = "--plugin-option") -> dict[str, dict[str, Any]]:
    """``{NAME: {KEY: VALUE}}`` from ``--plugin NAME`` and ``--plugin-option NAME:KEY=VALUE``."""
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        if not PLUGIN_NAME.match(name):
            raise UsageError(f"--plugin {name!r}: not a plugin name")
        out.setdefault(name, {})
    for text in options:
        m = _OPTION.match(text)
        if not m:
            raise UsageError(f"{flag} {text!r}: expected NAME:KEY=VALUE (e.g. lintian:fail-on=none)")
        out.setdefault(m.group(1), {})[m.group(2)] = value(m.group(3).strip())
    return out


def add_builder_plugin_args(b: argparse.ArgumentParser) -> None:
    b.add_argument("--allow-plugin", action="append", default=[], metavar="NAME",
                   help="a deb-mock plugin the hub may enable besides autopkgtest, ccache, lintian, piuparts, tmpfs "
                        "(a third-party one, or sign; repeat)")
    b.add_argument("--plugin", action="append", default=[], metavar="NAME",
                   help="a deb-mock plugin this builder runs for every build, as its deb-mock config's "
                        "[plugins.NAME] enabled = true (repeat); a target's --disable-plugin switches it off")
    b.add_argument("--plugin-option", action="append", default=[], metavar="NAME:KEY=VALUE",
                   help="an option of such a plugin (VALUE is TOML or text; repeat); enables it too")


def builder_plugins(names: list[str], options: list[str]) -> dict[str, dict[str, Any]]:
    """``builder --plugin``/``--plugin-option``: plugins installed here, their options as deb-mock checks them."""
    from deb_orchestrator.builder import plugincheck

    plugins = parse(names, options)
    problems = plugincheck.problems(plugins)
    if problems:
        raise UsageError("; ".join(problems))
    return plugins


def target_fields(args: argparse.Namespace) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if args.plugin or args.plugin_option or getattr(args, "no_plugins", False):
        fields["plugins"] = parse(args.plugin, args.plugin_option)
    if args.request_plugin is not None:
        fields["request_plugins"] = [n for n in args.request_plugin if n]
    if args.disable_plugin is not None:
        fields["disable_plugins"] = [n for n in args.disable_plugin if n]
    if args.policy is not None:
        fields["policy"] = parse([p for p in args.policy if p and ":" not in p],
                                 [p for p in args.policy if ":" in p], "--policy")
    return fields


TARGET_ARGS = [
    *plugin_args("a deb-mock plugin for every build of the target"),
    arg("--request-plugin", action="append", metavar="NAME",
        help="a plugin build requests may add (repeat; edit-target: --request-plugin '' for none)"),
    arg("--disable-plugin", action="append", metavar="NAME",
        help="a deb-mock plugin the target's builds run without, also one a builder's config enables (deb-mock "
             "--disable-plugin; repeat; edit-target: --disable-plugin '' for none)"),
    arg("--policy", action="append", metavar="NAME:KEY=VALUE",
        help="a hub plugin's option for this target, e.g. lintian-gate:refuse-on=error, or NAME alone for its "
             "defaults (repeat; edit-target: --policy '' for none)"),
]


def register(sub: Subparsers) -> None:
    add_query(sub, "edit-target", lambda hub, a: hub.edit_target(a.name, **_edits(a)),
              "change a target's plugins, the plugins requests may add, those it switches off, its policy (those "
              "given)", "name",
              *TARGET_ARGS, arg("--no-plugins", action="store_true", help="its builds run no plugin of their own"))


def _edits(args: argparse.Namespace) -> dict[str, Any]:
    fields = target_fields(args)
    if not fields:
        raise UsageError("edit-target: nothing to change (--plugin, --plugin-option, --no-plugins, "
                         "--request-plugin, --disable-plugin, --policy)")
    return fields
