"""Small housekeeping tasks."""

from __future__ import annotations

from sqlalchemy import text

from app.db import session_scope
from worker.celery_app import celery_app


@celery_app.task(name="maintenance.ping", ignore_result=False)
def ping(token: str) -> str:
    """Echo `token` back after touching the database: proves broker, worker and database work."""
    with session_scope() as session:
        session.execute(text("SELECT 1"))
    return token
