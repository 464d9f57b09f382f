"""Pages: the projects list and a project's overview with its tags."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.db import SessionDep
from app.deps import PageProjectDep, PageUser
from app.schemas.tags import TagRead
from app.services import projects as project_service
from app.services import tags as tag_service
from app.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/")
def projects_page(request: Request, session: SessionDep, _user: PageUser) -> Response:
    """All projects."""
    rows = project_service.get_all(session=session)
    return render(request, "projects.html", projects=rows)


@router.get("/projects/{project_id}")
def project_page(
    request: Request, session: SessionDep, project: PageProjectDep
) -> Response:
    """A project's overview (counts, label balance, co-occurrence) and tag editor; the
    overview's figures load from /api/v1/.../stats so a large project's page opens at once."""
    tags = tag_service.get_all(session=session, project=project)
    tags_data = [TagRead.model_validate(tag).model_dump(mode="json") for tag in tags]
    return render(request, "project.html", project=project, tags_data=tags_data, active="overview")


@router.get("/projects/{project_id}/settings")
def project_settings_page(
    request: Request, session: SessionDep, project: PageProjectDep
) -> Response:
    """Rename, describe or delete a project."""
    return render(request, "project_settings.html", project=project, active="settings")
