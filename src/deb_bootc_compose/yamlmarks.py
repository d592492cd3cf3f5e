"""Load YAML while remembering where every key and value came from (file:line), for error messages."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

Loc = tuple[str | int, ...]


class YamlLocationError(ValueError):
    """A YAML document could not be parsed; the message names file:line:column."""


@dataclass
class LocatedDocument:
    """The plain Python value of a YAML document plus the line of every key path in it."""

    path: Path
    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)

    def line_of(self, loc: Loc) -> int | None:
        """The line of ``loc`` or of its nearest ancestor that has one (1-based)."""
        probe = tuple(loc)
        while True:
            if probe in self.lines:
                return self.lines[probe]
            if not probe:
                return None
            probe = probe[:-1]

    def where(self, loc: Loc) -> str:
        line = self.line_of(loc)
        key = ".".join(str(p) for p in loc) or "(top level)"
        return f"{self.path}:{line if line is not None else '?'}:{key}"


def _convert(node: yaml.Node, loc: Loc, lines: dict[Loc, int], source: Path) -> Any:
    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _convert(key_node, (*loc, "<key>"), {}, source)
            if not isinstance(key, str | int):
                raise YamlLocationError(f"{source}:{key_node.start_mark.line + 1}: mapping keys must be plain strings")
            if key in out:
                raise YamlLocationError(
                    f"{source}:{key_node.start_mark.line + 1}:{'.'.join(str(p) for p in (*loc, key))}: "
                    f"duplicate key {key!r}"
                )
            lines[(*loc, key)] = key_node.start_mark.line + 1
            out[key] = _convert(value_node, (*loc, key), lines, source)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, (*loc, i), lines, source) for i, item in enumerate(node.value)]
    assert isinstance(node, yaml.ScalarNode)
    constructor = yaml.SafeLoader(node.value)
    try:
        return constructor.construct_object(node, deep=True)
    finally:
        constructor.dispose()


def load(path: Path, text: str | None = None) -> LocatedDocument:
    """Parse one YAML document from ``path`` (or ``text``), keeping line numbers for every key path."""
    if text is None:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise YamlLocationError(f"{path}: no such file") from exc
        except UnicodeDecodeError as exc:
            raise YamlLocationError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        raise YamlLocationError(f"{where}: YAML syntax error: {problem}") from exc
    except yaml.YAMLError as exc:
        raise YamlLocationError(f"{path}: YAML error: {exc}") from exc
    lines: dict[Loc, int] = {}
    if node is None:
        return LocatedDocument(path, None, lines)
    data = _convert(node, (), lines, path)
    return LocatedDocument(path, data, lines)
