"""docs/api.md is generated from the OpenAPI schema and must match the running hub's API."""

from __future__ import annotations

from pathlib import Path

import httpx
from orch_hub import RunningHub

from deb_orchestrator.hub import apidoc

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def test_api_md_is_up_to_date() -> None:
    assert DOC.read_text() == apidoc.render(apidoc.schema()), (
        "docs/api.md is stale: run `python -m deb_orchestrator.hub.apidoc > docs/api.md`"
    )


def test_apidoc_schema_matches_running_hub(hub: RunningHub) -> None:
    live = httpx.get(f"{hub.url}/api/v1/openapi.json").json()
    documented = apidoc.schema()
    live_ops = {(p, m) for p, ms in live["paths"].items() for m in ms if p != "/api/v1/health"}
    assert live_ops == {(p, m) for p, ms in documented["paths"].items() for m in ms}
    text = DOC.read_text()
    for path, method in live_ops:
        assert f"`{method.upper()} {path}`" in text
