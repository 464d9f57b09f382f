"""/healthz (liveness) and /readyz (database and broker reachable)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from kombu import Connection
from sqlalchemy import text

from app.config import settings
from app.db import new_session

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


def _check_database() -> str | None:
    try:
        with new_session() as session:
            session.execute(text("SELECT 1"))
    except Exception as exc:
        return f"database unreachable: {type(exc).__name__}: {exc}"[:300]
    return None


def _check_broker() -> str | None:
    try:
        with Connection(settings.broker_url, connect_timeout=3) as connection:
            connection.ensure_connection(max_retries=1, timeout=3)
    except Exception as exc:
        return f"broker unreachable: {type(exc).__name__}: {exc}"[:300]
    return None


@router.get("/readyz")
def readyz() -> JSONResponse:
    """200 when the database and the broker answer, else 503 naming what is down."""
    problems = [p for p in (_check_database(), _check_broker()) if p]
    if problems:
        return JSONResponse({"status": "unavailable", "problems": problems}, status_code=503)
    return JSONResponse({"status": "ok"})
