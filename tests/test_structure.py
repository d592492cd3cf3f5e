"""The house rules a reader relies on (docs/architecture.md), checked on the source itself: small modules, small
functions, and the one-way dependencies between the packages.

Each rule fails with the offenders named, so a change that breaks one says where to split or what to move."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80

# who may import whom (top-level packages); anything not listed is forbidden. The shared libraries name no tool.
ALLOWED = {
    "debsandbox": set(),
    "debarchive": {"debsandbox"},
    "deb_mock": {"debarchive", "debsandbox"},
    "deb_orchestrator": {"debarchive", "debsandbox", "deb_mock"},
    "deb_bootc_compose": {"debarchive", "debsandbox", "deb_mock", "deb_orchestrator"},
}
# finer rules inside an allowed edge: module prefixes a package may reach in another one
ONLY = {
    ("deb_bootc_compose", "deb_orchestrator"): ("deb_orchestrator.client", "deb_orchestrator.hubhttp",
                                                "deb_orchestrator.states", "deb_orchestrator.wire"),
    ("deb_bootc_compose", "deb_mock"): ("deb_mock.api",),
    ("deb_orchestrator", "deb_mock"): ("deb_mock.api",),
}


def sources() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def imports(tree: ast.AST) -> list[str]:
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append(node.module)
    return found


def within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def test_the_rules_see_the_whole_tree() -> None:
    files = sources()
    assert len(files) > 200, files[:5]
    assert {p.relative_to(SRC).parts[0] for p in files} >= set(ALLOWED)


def test_no_module_over_the_limit() -> None:
    long = {str(p.relative_to(SRC)): n for p in sources()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}
    assert not long, f"modules over {MAX_MODULE_LINES} lines (split them by purpose): {long}"


def test_no_function_over_the_limit() -> None:
    long: dict[str, int] = {}
    for p in sources():
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno is not None:
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long[f"{p.relative_to(SRC)}:{node.lineno} {node.name}"] = n
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


def test_dependencies_go_one_way() -> None:
    wrong: list[str] = []
    for p in sources():
        pkg = p.relative_to(SRC).parts[0]
        for module in imports(ast.parse(p.read_text(encoding="utf-8"))):
            top = module.split(".")[0]
            if top == pkg or top not in ALLOWED or pkg not in ALLOWED:
                continue
            if top not in ALLOWED[pkg]:
                wrong.append(f"{p.relative_to(SRC)} imports {module}")
            elif (only := ONLY.get((pkg, top))) and not within(module, only):
                wrong.append(f"{p.relative_to(SRC)} imports {module} (only {', '.join(only)})")
    assert not wrong, "\n".join(wrong)


def test_the_rules_catch_what_they_guard(tmp_path: Path) -> None:
    """The checks themselves fail on a planted offender (so a rule can't silently stop working)."""
    bad = "import deb_orchestrator.cli\nfrom deb_mock.session import x\n" + "def f():\n" + "    pass\n" * 90
    tree = ast.parse(bad)
    assert imports(tree) == ["deb_orchestrator.cli", "deb_mock.session"]
    fn = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef))
    assert fn.end_lineno is not None and fn.end_lineno - fn.lineno + 1 > MAX_FUNCTION_LINES
    only = ONLY[("deb_bootc_compose", "deb_orchestrator")]
    assert not within("deb_orchestrator.cli", only) and not within("deb_orchestrator.clientconfig", only)
    assert within("deb_orchestrator.wire.webhooks", only)
    assert "debarchive" not in ALLOWED["debsandbox"]
