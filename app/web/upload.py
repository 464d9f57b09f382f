"""The upload page: images, folders and zips in; label files imported with a preview."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.config import settings
from app.db import SessionDep
from app.deps import PageProjectDep
from app.schemas.tags import TagRead
from app.services import tags as tag_service
from app.services.label_imports import FORMATS
from app.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/projects/{project_id}/upload")
def upload_page(request: Request, session: SessionDep, project: PageProjectDep) -> Response:
    """Upload images (files, a folder, zips) and import labels."""
    tags = tag_service.get_all(session=session, project=project, include_archived=False)
    config = {
        "project_id": project.id,
        "tags": [TagRead.model_validate(tag).model_dump(mode="json") for tag in tags],
        "max_upload_bytes": settings.max_upload_bytes,
        "max_zip_bytes": settings.max_zip_bytes,
        "formats": list(FORMATS),
    }
    return render(request, "upload.html", project=project, config=config, active="upload",
                  max_upload_bytes=settings.max_upload_bytes,
                  max_zip_bytes=settings.max_zip_bytes,
                  max_megapixels=settings.max_image_pixels // 1_000_000)
