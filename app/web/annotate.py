"""The annotator page: grid and single-image tagging (all data comes from /api/v1)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.db import SessionDep
from app.deps import PageProjectDep
from app.models.assets import SPLITS
from app.schemas.tags import TagRead
from app.services import tags as tag_service
from app.templating import render

router = APIRouter(include_in_schema=False)

GRID_PAGE_SIZE = 120


@router.get("/projects/{project_id}/annotate")
def annotate_page(request: Request, session: SessionDep, project: PageProjectDep) -> Response:
    """Tag a project's images with hotkeys, clicks and bulk selections."""
    tags = tag_service.get_all(session=session, project=project, include_archived=False)
    tags_data = [TagRead.model_validate(tag).model_dump(mode="json") for tag in tags]
    config = {"project_id": project.id, "page_size": GRID_PAGE_SIZE}
    return render(
        request, "annotate.html", project=project, tags_data=tags_data, config=config,
        splits=SPLITS, active="annotate",
    )  # fmt: skip
