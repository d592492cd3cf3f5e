"""The hub's HTTP plumbing under :class:`deb_orchestrator.client.HubClient`: the httpx client with the token,
the hub and token lookup, and errors as :class:`HubError` / :class:`HubUnreachable`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Self, TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter

from deb_orchestrator.clientconfig import hub_and_token
from deb_orchestrator.eventfeed import EventFeed

API = "/api/v1"
_M = TypeVar("_M", bound=BaseModel)


class HubError(RuntimeError):
    """The hub answered with an error; ``status`` is the HTTP status, ``detail`` its message."""

    def __init__(self, status: int, detail: str, method: str = "", url: str = "") -> None:
        self.status = status
        self.detail = detail
        super().__init__(f"{method} {url}: {status} {detail}".strip())


class HubUnreachable(HubError):
    def __init__(self, url: str, reason: str) -> None:
        super().__init__(0, f"cannot reach the hub at {url}: {reason}")


class HubTransport:
    """The hub's HTTP plumbing: one httpx client with the token, errors as :class:`HubError`; the calls
    themselves are :class:`deb_orchestrator.client.HubClient`'s."""

    def __init__(self, url: str, token: str | None = None, *, timeout: float = 60.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.url = url.rstrip("/")
        self.token = token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=httpx.Timeout(timeout, connect=10.0),
                                 transport=transport)
        self.feed_options: dict[str, float] = {}  # EventFeed's heartbeat and open_timeout (tests shorten them)
        self.feed: EventFeed | None = None  # the latest (whether it streamed: feed.streaming, fallback_reason)

    @classmethod
    def from_environment(cls, url: str | None = None, *, token: str | None = None,
                         token_file: str | Path | None = None, timeout: float = 60.0) -> Self:
        """A client for ``url`` (else DEB_ORCHESTRATOR_HUB, the config file's ``hub``, :data:`DEFAULT_HUB`) with
        the token given, else DEB_ORCHESTRATOR_TOKEN, else the config file's ``token`` or ``token_file``."""
        hub, found = hub_and_token(url, token, token_file)
        return cls(hub, found, timeout=timeout)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    # ------------------------------------------------------------------ plumbing
    def request(self, method: str, path: str, *, timeout: float | None = None, api: bool = True,
                **kwargs: Any) -> httpx.Response:
        """One call; ``path`` is under /api/v1 unless ``api`` is false (e.g. ``/repos/<tag>/key.asc``)."""
        url = API + path if api else path
        if timeout is not None:
            kwargs["timeout"] = httpx.Timeout(timeout, connect=10.0)
        try:
            resp = self.http.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            raise HubUnreachable(self.url, str(exc) or type(exc).__name__) from exc
        if resp.status_code >= 400:
            try:
                detail = resp.json().get("detail", resp.text)
            except ValueError:
                detail = resp.text
            raise HubError(resp.status_code, str(detail), method, url)
        return resp

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None}).json()

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        resp = self.request("POST", path, json=body, **kwargs)
        return resp.json() if resp.status_code != 204 and resp.content else None

    @staticmethod
    def _one(model: type[_M], data: Any) -> _M:
        return model.model_validate(data)

    @staticmethod
    def _many(model: type[_M], data: Any) -> list[_M]:
        return TypeAdapter(list[model]).validate_python(data)  # type: ignore[valid-type]
