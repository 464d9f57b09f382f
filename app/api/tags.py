"""/api/v1/projects/{project_id}/tags"""

from __future__ import annotations

from fastapi import APIRouter, status

from app.db import SessionDep
from app.deps import ProjectDep
from app.schemas.tags import TagCreate, TagRead, TagReorder, TagUpdate
from app.services import tags as tag_service

router = APIRouter(prefix="/projects/{project_id}/tags", tags=["tags"])


@router.get("", response_model=list[TagRead])
def list_tags(
    project: ProjectDep, session: SessionDep, include_archived: bool = True
) -> list[TagRead]:
    """The project's tags in display order."""
    tags = tag_service.get_all(
        session=session, project=project, include_archived=include_archived
    )
    return [TagRead.model_validate(tag) for tag in tags]


@router.post("", response_model=TagRead, status_code=status.HTTP_201_CREATED)
def create_tag(project: ProjectDep, body: TagCreate, session: SessionDep) -> TagRead:
    """Add a tag."""
    tag = tag_service.create(
        session=session,
        project=project,
        name=body.name,
        color=body.color,
        hotkey=body.hotkey,
        group=body.group,
    )
    return TagRead.model_validate(tag)


@router.put("/order", response_model=list[TagRead])
def reorder_tags(project: ProjectDep, body: TagReorder, session: SessionDep) -> list[TagRead]:
    """Set the display order of all the project's tags."""
    tags = tag_service.reorder(session=session, project=project, tag_ids=body.tag_ids)
    return [TagRead.model_validate(tag) for tag in tags]


@router.patch("/{tag_id}", response_model=TagRead)
def update_tag(project: ProjectDep, tag_id: int, body: TagUpdate, session: SessionDep) -> TagRead:
    """Change a tag; only the fields present in the body change."""
    tag = tag_service.get(session=session, project=project, tag_id=tag_id)
    fields = body.model_dump(exclude_unset=True)
    tag_service.update(session=session, project=project, tag=tag, **fields)
    return TagRead.model_validate(tag)


@router.delete("/{tag_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_tag(project: ProjectDep, tag_id: int, session: SessionDep) -> None:
    """Delete a tag and its annotations."""
    tag = tag_service.get(session=session, project=project, tag_id=tag_id)
    tag_service.delete(session=session, tag=tag)
