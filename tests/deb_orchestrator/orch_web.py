"""Helpers for the web UI tests: a browser-like HTTP client that signs in with a token and posts the pages'
forms (with their CSRF secret, from the hub's origin), the SQL statements a page costs, and the page benchmark's
database filler (bench/hub_pages.py)."""

from __future__ import annotations

import importlib.util
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, event

BENCH = Path(__file__).resolve().parents[2] / "bench" / "hub_pages.py"


def bench_pages() -> Any:
    """bench/hub_pages.py as a module (its ``fill`` and ``pages``)."""
    if "hub_pages" not in sys.modules:
        spec = importlib.util.spec_from_file_location("hub_pages", BENCH)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules["hub_pages"] = module
        spec.loader.exec_module(module)
    return sys.modules["hub_pages"]


def hidden(page: str, name: str) -> str:
    found = re.search(rf'<input type="hidden" name="{name}" value="([^"]*)"', page)
    assert found, f"no hidden field {name} in the page"
    return found.group(1)


class Browser:
    """Cookies and forms as a browser handles them (sent back to the hub; the origin of the hub's pages)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=30, follow_redirects=False)

    def close(self) -> None:
        self.http.close()

    def get(self, path: str) -> httpx.Response:
        return self.http.get(path)

    def sign_in(self, token: str) -> httpx.Response:
        form = self.get("/login")
        assert form.status_code == 200
        return self.post("/login", {"token": token, "next": "/dashboard"}, csrf=hidden(form.text, "csrf"))

    @property
    def csrf(self) -> str:
        return hidden(self.get("/dashboard").text, "csrf")

    def post(self, path: str, data: dict[str, str] | None = None, *, csrf: str | None = None,
             origin: str | None = "self", headers: dict[str, str] | None = None) -> httpx.Response:
        fields = dict(data or {})
        if csrf is not None:
            fields["csrf"] = csrf
        sent = dict(headers or {})
        if origin is not None:
            sent["Origin"] = self.url if origin == "self" else origin
        return self.http.post(path, data=fields, headers=sent)


@contextmanager
def counted_queries(engine: Engine) -> Iterator[list[str]]:
    """The SQL statements run by request threads (not the hub's reaper, publisher or sender) meanwhile."""
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if threading.current_thread().name.startswith("AnyIO worker thread"):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)
