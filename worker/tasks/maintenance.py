"""Small housekeeping tasks."""

from __future__ import annotations

from sqlalchemy import text

from app.db import session_scope
from app.deps import get_blob_store
from worker.celery_app import celery_app


@celery_app.task(name="maintenance.ping", ignore_result=False)
def ping(token: str) -> str:
    """Echo `token` back after touching the database: proves broker, worker and database work."""
    with session_scope() as session:
        session.execute(text("SELECT 1"))
    return token


@celery_app.task(name="maintenance.delete_prefixes", acks_late=True)
def delete_prefixes(prefixes: list[str]) -> int:
    """Delete the files under each prefix (a deleted project's images, a run's checkpoints)."""
    store = get_blob_store()
    for prefix in prefixes:
        store.delete_prefix(prefix)
    return len(prefixes)
