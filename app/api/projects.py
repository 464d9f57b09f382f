"""/api/v1/projects"""

from __future__ import annotations

from fastapi import APIRouter, status

from app.db import SessionDep
from app.deps import CurrentUser, ProjectDep
from app.schemas.projects import ProjectCreate, ProjectDelete, ProjectRead, ProjectUpdate
from app.services import projects as project_service

router = APIRouter(prefix="/projects", tags=["projects"])


@router.get("", response_model=list[ProjectRead])
def list_projects(session: SessionDep, _user: CurrentUser) -> list[ProjectRead]:
    """Every project with its image and tag counts."""
    rows = project_service.get_all(session=session)
    return [
        ProjectRead.model_validate(project).model_copy(
            update={"image_count": images, "tag_count": tags}
        )
        for project, images, tags in rows
    ]


@router.post("", response_model=ProjectRead, status_code=status.HTTP_201_CREATED)
def create_project(body: ProjectCreate, session: SessionDep, user: CurrentUser) -> ProjectRead:
    """Create a project."""
    project = project_service.create(
        session=session, name=body.name, description=body.description, created_by=user
    )
    return ProjectRead.model_validate(project)


@router.get("/{project_id}", response_model=ProjectRead)
def read_project(project: ProjectDep) -> ProjectRead:
    """One project."""
    return ProjectRead.model_validate(project)


@router.patch("/{project_id}", response_model=ProjectRead)
def update_project(project: ProjectDep, body: ProjectUpdate, session: SessionDep) -> ProjectRead:
    """Rename or re-describe a project."""
    project_service.update(
        session=session, project=project, name=body.name, description=body.description
    )
    return ProjectRead.model_validate(project)


@router.delete("/{project_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_project(project: ProjectDep, body: ProjectDelete, session: SessionDep) -> None:
    """Delete a project; the body must repeat its name as confirmation."""
    project_service.delete(session=session, project=project, confirm_name=body.confirm_name)
