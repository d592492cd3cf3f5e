"""Plugins on the wire (docs/plugins.md, "deb-orchestrator"): the deb-mock plugins a target or a build request
enables with their options, the per-target options of hub plugins (``policy``), and the bounds on the plugin
results builders report."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from pydantic import AfterValidator

PLUGIN_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,40}$")  # deb-mock's and the hub's plugin names
OPTION_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
MAX_PLUGINS = 16  # plugins one target, request or result names
MAX_OPTIONS_BYTES = 4096  # one plugin's options, as JSON
MAX_RESULT_BYTES = 64 << 10  # one plugin's result as the hub stores it (bigger ones are cut: bound_results)
MAX_RESULTS_BYTES = 256 << 10  # all plugin results of one task
_SCALAR = (str, int, float, bool)


def _size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), sort_keys=True))


def check_name(name: str, what: str = "plugin") -> str:
    if not isinstance(name, str) or not PLUGIN_NAME.match(name):
        raise ValueError(f"invalid {what} name {name!r}: lower-case letters, digits, - and _ (at most 41)")
    return name


def _check_value(name: str, key: str, value: Any) -> None:
    items = value if isinstance(value, list) else [value]
    if isinstance(value, list) and len(value) > 100:
        raise ValueError(f"plugin {name}: option {key}: at most 100 values")
    for item in items:
        if not isinstance(item, _SCALAR) or (isinstance(item, str) and len(item) > 1000):
            raise ValueError(f"plugin {name}: option {key}: a string (at most 1000 characters), number, "
                             "true/false or a list of them")


def check_plugins(value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``{NAME: {OPTION: VALUE}}``: known name shapes, option values as deb-mock's ``--plugin-option`` takes
    them (TOML scalars or lists of them), bounded in number and size."""
    if len(value) > MAX_PLUGINS:
        raise ValueError(f"at most {MAX_PLUGINS} plugins")
    for name, options in value.items():
        check_name(name)
        for key, v in options.items():
            if not OPTION_KEY.match(key):
                raise ValueError(f"plugin {name}: invalid option name {key!r}")
            _check_value(name, key, v)
        if _size(options) > MAX_OPTIONS_BYTES:
            raise ValueError(f"plugin {name}: its options are larger than {MAX_OPTIONS_BYTES} bytes as JSON")
    return value


def check_names(value: list[str]) -> list[str]:
    if len(value) > MAX_PLUGINS:
        raise ValueError(f"at most {MAX_PLUGINS} plugins")
    return [check_name(n) for n in value]


PluginMap = Annotated[dict[str, dict[str, Any]], AfterValidator(check_plugins)]
PluginNames = Annotated[list[str], AfterValidator(check_names)]


def bound_results(results: Any) -> dict[str, dict[str, Any]]:
    """What the hub keeps of a result's ``plugins``: entries with a plugin's name and an object as value, each
    at most MAX_RESULT_BYTES and all together at most MAX_RESULTS_BYTES as JSON; a bigger entry is replaced by
    its state with ``"truncated": true`` and its size (its log and result.json are kept as files)."""
    if not isinstance(results, dict):
        return {}
    kept: dict[str, dict[str, Any]] = {}
    total = 0
    for name, data in list(results.items())[:MAX_PLUGINS]:
        if not isinstance(name, str) or not PLUGIN_NAME.match(name) or not isinstance(data, dict):
            continue
        size = _size(data)
        if size > MAX_RESULT_BYTES or total + size > MAX_RESULTS_BYTES:
            state = data.get("state")
            data = {"state": state if isinstance(state, str) and len(state) <= 20 else "unknown",
                    "truncated": True, "bytes": size}
            size = _size(data)
        kept[name] = data
        total += size
    return kept
