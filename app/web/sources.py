"""The storage sources page: add S3 / Azure sources, sync them and watch the progress."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.api.sources import source_read
from app.db import SessionDep
from app.deps import PageProjectDep, PageUser
from app.services import sources as source_service
from app.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/projects/{project_id}/sources")
def sources_page(
    request: Request, session: SessionDep, project: PageProjectDep, user: PageUser
) -> Response:
    """A project's storage sources with their last sync."""
    sources = [source_read(session, source).model_dump(mode="json")
               for source in source_service.get_all(session=session, project=project)]
    config = {"project_id": project.id, "sources": sources, "is_admin": user.is_admin}
    return render(request, "sources.html", project=project, config=config, active="sources")
