"""Load YAML while remembering where every key and value came from (file:line), for error messages."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

Loc = tuple[str | int, ...]
# Bounds that a real document never reaches and a hostile one does: aliases may make a small document
# expand to billions of values ("billion laughs"), or to an endless one (an anchor inside itself). Values
# written out in the document cost nothing against MAX_ALIAS_VALUES (its size bounds them); each value that
# an alias repeats costs one.
MAX_BYTES = 16 << 20
MAX_ALIAS_VALUES = 10_000
MAX_DEPTH = 64


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


class _Budget:
    def __init__(self, source: Path) -> None:
        self.source = source
        self.visited = 0
        self.distinct: set[int] = set()
        self.constructor = yaml.SafeLoader("")  # one scalar constructor for the whole document

    def spend(self, node: yaml.Node, depth: int) -> None:
        self.visited += 1
        self.distinct.add(id(node))
        where = f"{self.source}:{node.start_mark.line + 1}"
        if self.visited - len(self.distinct) > MAX_ALIAS_VALUES:
            raise YamlLocationError(
                f"{where}: aliases (*name) repeat more than {MAX_ALIAS_VALUES} values: a 'billion laughs' "
                "document? refused"
            )
        if depth > MAX_DEPTH:
            raise YamlLocationError(
                f"{where}: values nested more than {MAX_DEPTH} deep (an anchor used inside itself?); refused"
            )


def _convert(node: yaml.Node, loc: Loc, lines: dict[Loc, int], source: Path, budget: _Budget | None = None) -> Any:
    budget = budget or _Budget(source)
    budget.spend(node, len(loc))
    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _convert(key_node, (*loc, "<key>"), {}, source, budget)
            if not isinstance(key, str | int):
                raise YamlLocationError(f"{source}:{key_node.start_mark.line + 1}: mapping keys must be plain strings")
            if key in out:
                raise YamlLocationError(
                    f"{source}:{key_node.start_mark.line + 1}:{'.'.join(str(p) for p in (*loc, key))}: "
                    f"duplicate key {key!r}"
                )
            lines[(*loc, key)] = key_node.start_mark.line + 1
            out[key] = _convert(value_node, (*loc, key), lines, source, budget)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, (*loc, i), lines, source, budget) for i, item in enumerate(node.value)]
    assert isinstance(node, yaml.ScalarNode)
    return budget.constructor.construct_object(node, deep=True)


def load(path: Path, text: str | None = None) -> LocatedDocument:
    """Parse one YAML document from ``path`` (or ``text``), keeping line numbers for every key path."""
    if text is None:
        try:
            with open(path, "rb") as fh:
                raw = fh.read(MAX_BYTES + 1)
            if len(raw) > MAX_BYTES:
                raise YamlLocationError(f"{path}: larger than {MAX_BYTES >> 20} MiB; refused")
            text = raw.decode("utf-8")
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
