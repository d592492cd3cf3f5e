"""Write the REST API reference (Markdown) from the hub's OpenAPI schema.

    python -m deb_orchestrator.hub.apidoc > docs/api.md

The schema is built from the app without starting it (no database is opened).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from fastapi.openapi.utils import get_openapi


def schema() -> dict[str, Any]:
    from fastapi import FastAPI

    from deb_orchestrator.hub.api import metrics
    from deb_orchestrator.hub.app import API, API_ROUTERS, DESCRIPTION

    app = FastAPI(title="deb-orchestrator hub", version="1", description=DESCRIPTION)
    for module in API_ROUTERS:
        app.include_router(module.router, prefix=API)
    app.include_router(metrics.router)
    return get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _type(s: dict[str, Any]) -> str:
    if "$ref" in s:
        return f"[{_ref_name(s['$ref'])}](#{_ref_name(s['$ref']).lower()})"
    for union in ("anyOf", "oneOf"):
        if union in s:
            return " or ".join(_type(x) for x in s[union])
    if "const" in s:
        return f"`{json.dumps(s['const'])}`"
    if s.get("type") == "array":
        return f"list of {_type(s.get('items', {}))}"
    if s.get("type") == "object" and isinstance(s.get("additionalProperties"), dict):
        return f"object of {_type(s['additionalProperties'])}"
    return str(s.get("type", "any"))


def _answers(op: dict[str, Any]) -> str:
    """``200`` Successful Response: [Model](#model), ``422`` …: each status with the schema of its JSON body."""
    parts = []
    for code, r in op.get("responses", {}).items():
        text = f"`{code}` {r.get('description', '')}"
        body = r.get("content", {}).get("application/json", {}).get("schema")
        if body and not code.startswith("4"):
            text += f": {_type(body)}"
        parts.append(text)
    return ", ".join(parts)


def _constraints(s: dict[str, Any]) -> str:
    parts = []
    for key in ("pattern", "minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems", "default"):
        if key in s:
            parts.append(f"{key} `{json.dumps(s[key])}`")
    return ", ".join(parts)


def render(spec: dict[str, Any]) -> str:
    out = ["# deb-orchestrator REST API reference", "",
           "Generated from the hub's OpenAPI schema by `python -m deb_orchestrator.hub.apidoc > docs/api.md`;",
           "a test checks that this file is up to date. A running hub serves the schema at",
           "`/api/v1/openapi.json` and an interactive explorer at `/api/v1/docs`.", "",
           spec["info"].get("description", "").strip(), ""]
    by_tag: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            by_tag.setdefault((op.get("tags") or ["other"])[0], []).append((method.upper(), path, op))
    out.append("## Endpoints")
    out.append("")
    for tag, ops in by_tag.items():
        out += [f"### {tag}", ""]
        for method, path, op in ops:
            out += [f"#### `{method} {path}`", "", op.get("summary", ""), ""]
            if op.get("description"):
                out += [op["description"].strip(), ""]
            params = op.get("parameters", [])
            if params:
                out += ["| parameter | in | type | required | notes |", "|---|---|---|---|---|"]
                for p in params:
                    sch = p.get("schema", {})
                    notes = "; ".join(x for x in (p.get("description", ""), _constraints(sch)) if x)
                    out.append(f"| `{p['name']}` | {p['in']} | {_type(sch)} | {'yes' if p.get('required') else 'no'} "
                               f"| {notes} |")
                out.append("")
            body = op.get("requestBody", {}).get("content", {})
            for media, content in body.items():
                out += [f"Body ({media}): {_type(content.get('schema', {}))}", ""]
            out += [f"Answers: {_answers(op)}", ""]
    out += ["## Schemas", ""]
    for name, sch in spec.get("components", {}).get("schemas", {}).items():
        out += [f"### {name}", ""]
        if sch.get("description"):
            out += [sch["description"], ""]
        if "enum" in sch:
            out += ["One of " + ", ".join(f"`{json.dumps(v)}`" for v in sch["enum"]) + ".", ""]
        props = sch.get("properties", {})
        if props:
            required = set(sch.get("required", []))
            out += ["| field | type | required | notes |", "|---|---|---|---|"]
            for field, fs in props.items():
                notes = "; ".join(x for x in (fs.get("description", ""), _constraints(fs)) if x)
                out.append(f"| `{field}` | {_type(fs)} | {'yes' if field in required else 'no'} | {notes} |")
            out.append("")
    return "\n".join(out).rstrip() + "\n"


def main() -> int:
    sys.stdout.write(render(schema()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
