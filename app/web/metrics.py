"""/metrics in Prometheus text format, at the root where scrapers expect it."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response

from app.config import settings
from app.observability import render_metrics

router = APIRouter(include_in_schema=False)


def _authorized(request: Request, token: str) -> bool:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        credentials.strip().encode(), token.encode()
    )


@router.get("/metrics")
def metrics(request: Request) -> Response:
    """Prometheus metrics; when POLYTAG_METRICS_TOKEN is set, only with that bearer token."""
    token = settings.metrics_token
    if token and not _authorized(request, token):
        return PlainTextResponse(
            "metrics need 'Authorization: Bearer <POLYTAG_METRICS_TOKEN>'",
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    body, content_type = render_metrics()
    return Response(body, media_type=content_type)
