"""Batch prediction jobs over uploaded images (default queue)."""

from __future__ import annotations

import logging

from app.db import session_scope
from app.deps import get_blob_store
from app.services import predictions as prediction_service
from worker.celery_app import celery_app

logger = logging.getLogger(__name__)


@celery_app.task(name="predictions.run_job", acks_late=True)
def run_job(job_id: int) -> str:
    """Claim a queued job and score its images; a duplicate delivery exits quietly."""
    store = get_blob_store()
    with session_scope() as session:
        if not prediction_service.claim_job(session=session, job_id=job_id):
            return "not queued"
    try:
        with session_scope() as session:
            job = prediction_service.run_job(session=session, store=store, job_id=job_id)
            return job.status
    except Exception as error:
        logger.exception("prediction job %s failed", job_id)
        with session_scope() as session:
            prediction_service.fail_job(session=session, job_id=job_id, error=str(error))
        return "failed"
