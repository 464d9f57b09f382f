"""Fill the demo project queued from the projects page (default queue)."""

from __future__ import annotations

import logging

from app.db import new_session
from app.deps import get_blob_store
from app.models import Project
from app.services import demo as demo_service
from worker.celery_app import celery_app

logger = logging.getLogger(__name__)


@celery_app.task(name=demo_service.DEMO_TASK)
def create_demo_project(project_id: int, images: int, seed: int = 0) -> int:
    """Add the digit tags and images to the waiting demo project; returns its image count."""
    with new_session() as session:
        project = session.get(Project, project_id)
        if project is None or not project.description.startswith(demo_service.CREATING):
            return 0  # deleted meanwhile, or a duplicate delivery of a finished job
        try:
            demo_service.fill_demo_project(
                session=session, storage=get_blob_store(), project=project, images=images,
                seed=seed,
            )  # fmt: skip
        except Exception as exc:
            logger.exception("creating demo project %s failed", project_id)
            demo_service.mark_failed(session=session, project_id=project_id, error=exc)
            return 0
        return images
