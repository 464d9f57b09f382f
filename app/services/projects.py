"""Projects: create, list, rename, describe, delete."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.errors import InvalidInput, NotFound
from app.models import Asset, Project, Tag, TrainingRun, User
from app.services.jobs import enqueue


def get(*, session: Session, project_id: int) -> Project:
    """The project, or NotFound naming its id."""
    project = session.get(Project, project_id)
    if project is None:
        raise NotFound(f"project {project_id} not found")
    return project


def get_all(*, session: Session) -> list[tuple[Project, int, int]]:
    """Every project with its image and tag counts, newest first."""
    image_count = (
        select(func.count(Asset.id)).where(Asset.project_id == Project.id).scalar_subquery()
    )
    tag_count = (
        select(func.count(Tag.id))
        .where(Tag.project_id == Project.id, Tag.archived.is_(False))
        .scalar_subquery()
    )
    rows = session.execute(
        select(Project, image_count, tag_count).order_by(Project.id.desc())
    ).all()
    return [(row[0], row[1], row[2]) for row in rows]


def _clean_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise InvalidInput("the project name must not be empty")
    if len(name) > 200:
        raise InvalidInput("the project name must be at most 200 characters")
    return name


def create(
    *, session: Session, name: str, description: str = "", created_by: User | None = None
) -> Project:
    """Create a project."""
    project = Project(
        name=_clean_name(name),
        description=description.strip(),
        created_by_id=created_by.id if created_by else None,
    )
    session.add(project)
    session.commit()
    return project


def update(
    *, session: Session, project: Project, name: str | None = None, description: str | None = None
) -> Project:
    """Rename and/or re-describe a project."""
    if name is not None:
        project.name = _clean_name(name)
    if description is not None:
        project.description = description.strip()
    session.commit()
    return project


def delete(*, session: Session, project: Project, confirm_name: str) -> None:
    """Delete a project and everything in it; the caller must repeat its name to confirm."""
    if confirm_name.strip() != project.name:
        raise InvalidInput(
            f"to delete project '{project.name}', confirm with its exact name"
        )
    project_id = project.id
    run_ids = list(
        session.scalars(select(TrainingRun.id).where(TrainingRun.project_id == project_id))
    )
    session.delete(project)
    session.commit()
    # Files go after the rows: a crash in between leaves orphan files, never rows without files.
    prefixes = [f"projects/{project_id}/", *(f"runs/{run_id}/" for run_id in run_ids)]
    enqueue("maintenance.delete_prefixes", prefixes)
