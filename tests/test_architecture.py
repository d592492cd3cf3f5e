"""The one-way dependency rule of docs/architecture.md, checked on every import statement in src/.

compose → orchestrator client (→ HTTP → hub); builder → deb-mock API; compose → deb-mock API;
all → debarchive/debsandbox; debarchive → debsandbox; debsandbox → nothing of ours.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
OURS = ("debsandbox", "debarchive", "deb_mock", "deb_orchestrator", "deb_bootc_compose")

# importer package (or module prefix) -> the modules of other packages it may import (prefixes)
ALLOWED: dict[str, tuple[str, ...]] = {
    "debsandbox": (),
    "debarchive": ("debsandbox",),
    "deb_mock": ("debarchive", "debsandbox"),
    "deb_orchestrator.builder": ("deb_mock.api", "debarchive", "debsandbox"),
    "deb_orchestrator.hub": ("deb_mock.api", "deb_mock.codes", "debarchive", "debsandbox"),
    "deb_orchestrator": ("debarchive", "debsandbox"),
    "deb_bootc_compose": (
        "deb_orchestrator.client", "deb_orchestrator.wire", "deb_orchestrator.states",
        "deb_mock.api", "debarchive", "debsandbox",
    ),
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def _rule_for(module: str) -> tuple[str, tuple[str, ...]]:
    best = max((key for key in ALLOWED if module == key or module.startswith(key + ".")), key=len)
    return best, ALLOWED[best]


def _violations() -> list[str]:
    bad = []
    for path in sorted(SRC.rglob("*.py")):
        if path.relative_to(SRC).parts[0] not in OURS:
            continue
        module = _module_name(path)
        own = module.split(".")[0]
        key, allowed = _rule_for(module)
        for line, target in _imports(path):
            top = target.split(".")[0]
            if top not in OURS or top == own:
                continue
            if not any(target == a or target.startswith(a + ".") for a in allowed):
                bad.append(f"{path.relative_to(SRC)}:{line}: {module} imports {target} (rule {key!r} allows {allowed})")
    return bad


def test_dependencies_point_one_way() -> None:
    assert _violations() == []


def test_the_orchestrator_sides_do_not_import_each_other() -> None:
    """The hub, the builder and the client meet only over HTTP (the wire models are shared, nothing else)."""
    bad = []
    for side, forbidden in (("builder", ("deb_orchestrator.hub", "deb_orchestrator.cli")),
                            ("client.py", ("deb_orchestrator.hub", "deb_orchestrator.builder", "deb_orchestrator.cli")),
                            ("hub", ("deb_orchestrator.builder", "deb_orchestrator.client", "deb_orchestrator.cli"))):
        root = SRC / "deb_orchestrator" / side
        for path in [root] if root.is_file() else sorted(root.rglob("*.py")):
            for line, target in _imports(path):
                if any(target == f or target.startswith(f + ".") for f in forbidden):
                    bad.append(f"{path.relative_to(SRC)}:{line}: imports {target}")
    assert bad == []


@pytest.mark.parametrize("source, expected", [
    ("from deb_orchestrator.hub.models import Task\n", "deb_orchestrator.hub.models"),
    ("import deb_mock.session.session\n", "deb_mock.session.session"),
])
def test_the_checker_sees_both_import_forms(source: str, expected: str, tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    path.write_text(source)
    assert _imports(path) == [(1, expected)]
