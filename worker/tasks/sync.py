"""Sync a storage source into its project (default queue)."""

from __future__ import annotations

from app.deps import get_blob_store
from app.services import sync as sync_service
from worker.celery_app import celery_app


@celery_app.task(name=sync_service.SYNC_TASK, acks_late=True, reject_on_worker_lost=True)
def run_sync(job_id: int) -> str:
    """Claim the sync job (or resume it if its worker died) and run it; returns its status."""
    return sync_service.run_sync(job_id=job_id, storage=get_blob_store())
