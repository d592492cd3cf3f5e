"""What every page shares: the Jinja templates (escaped), the page response with its security headers, the
signed-in viewer, and paging of long lists."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from deb_orchestrator.hub.web import session as websession

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
PAGE_SIZE = 50  # rows of a long list per page
MAX_PAGE_SIZE = 500
# pages load their script from the hub only and may not be framed; the style sheet is inline in base.html
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts)) if ts else ""


def ago(ts: float | None) -> str:
    """Seconds, minutes, hours or days since ``ts``."""
    if not ts:
        return "never"
    s = max(0, int(time.time() - ts))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if s >= size:
            return f"{s // size} {unit} ago"
    return f"{s} s ago"


templates.env.filters["when"] = when
templates.env.filters["ago"] = ago


def viewer(request: Request, s: Session | None = None) -> websession.SignedIn | None:
    """The signed-in session of the request, if any (a database read only when the cookie is there)."""
    secret = request.cookies.get(websession.COOKIE)
    if not secret:
        return None
    if s is not None:
        return websession.lookup(s, secret)
    with request.app.state.hub.db.session() as own:
        return websession.lookup(own, secret)


def page(request: Request, template: str, title: str, status_code: int = 200, *, s: Session | None = None,
         **context: Any) -> HTMLResponse:
    me = viewer(request, s)
    response = templates.TemplateResponse(
        request, template, {"title": title, "me": me, "here": request.url.path, **context}, status_code=status_code)
    response.headers.update(PAGE_HEADERS)
    return response


@dataclass
class Paging:
    """A page of a long list: ``offset`` rows skipped, ``size`` shown, ``more`` when another page follows;
    ``query`` holds the list's filters, kept in the links to the other pages."""

    offset: int
    size: int
    more: bool = False
    query: dict[str, str] | None = None

    @classmethod
    def of(cls, request: Request) -> Paging:
        def number(name: str, default: int, top: int) -> int:
            text = request.query_params.get(name, "")
            return min(int(text), top) if text.isascii() and text.isdigit() else default

        return cls(number("offset", 0, 10**9), max(1, number("size", PAGE_SIZE, MAX_PAGE_SIZE)))

    def rows(self, items: list[Any]) -> list[Any]:
        """Rows of a query that asked for ``limit`` (size + 1) rows: one more means another page."""
        self.more = len(items) > self.size
        return items[: self.size]

    @property
    def limit(self) -> int:
        return self.size + 1

    def link(self, offset: int) -> str:
        params = {k: v for k, v in (self.query or {}).items() if v}
        params["offset"] = str(max(0, offset))
        if self.size != PAGE_SIZE:
            params["size"] = str(self.size)
        return "?" + urlencode(params)

    @property
    def newer(self) -> str | None:
        return self.link(self.offset - self.size) if self.offset > 0 else None

    @property
    def older(self) -> str | None:
        return self.link(self.offset + self.size) if self.more else None
