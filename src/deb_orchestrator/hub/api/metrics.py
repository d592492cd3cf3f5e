"""``GET /metrics``: the hub's figures in Prometheus' text format (docs/operations.md lists them).

Anonymous by default, like the other reads; with ``hub --metrics-token-required`` a scrape must carry a valid
token (any scope: Prometheus' ``authorization`` with ``credentials_file``)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

from deb_orchestrator.hub.api.common import hub_of
from deb_orchestrator.hub.auth import authenticate, bearer
from deb_orchestrator.states import AuditAction

router = APIRouter(tags=["hub"])


@router.get("/metrics", summary="Metrics in Prometheus' text format (a token only with --metrics-token-required)",
            response_class=Response,
            responses={200: {"content": {CONTENT_TYPE_PLAIN_0_0_4: {}}, "description": "the metrics"},
                       401: {"description": "the hub requires a token for metrics and none valid was sent"}})
async def metrics(request: Request, creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> Response:
    hub = hub_of(request)
    if hub.settings.metrics_token_required:
        await authenticate(request, creds, AuditAction.METRICS_SCRAPE)
    body = await run_in_threadpool(generate_latest, hub.metrics.registry)
    return Response(body, media_type=CONTENT_TYPE_PLAIN_0_0_4)
