"""/api/v1/demo: create the handwritten-digits demo project in the background."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status
from pydantic import BaseModel, Field

from app.db import SessionDep
from app.deps import CurrentUser, ProjectDep
from app.services import demo as demo_service

router = APIRouter(prefix="/demo", tags=["demo"])


class DemoCreate(BaseModel):
    images: int = Field(default=2000, ge=1, le=demo_service.MAX_IMAGES)
    seed: int = Field(default=0, ge=0)


class DemoProgress(BaseModel):
    project_id: int
    state: str = Field(description="creating, failed or ready")
    images: int
    total: int | None = None
    message: str


@router.post("", response_model=DemoProgress, status_code=status.HTTP_202_ACCEPTED)
def create_demo(body: DemoCreate, session: SessionDep, user: CurrentUser) -> DemoProgress:
    """Create the demo project now and queue the job that adds its tags and images."""
    project = demo_service.queue_demo_project(
        session=session, user=user, images=body.images, seed=body.seed
    )
    progress: dict[str, Any] = demo_service.demo_progress(session=session, project=project)
    return DemoProgress(**progress, total=body.images)


@router.get("/{project_id}", response_model=DemoProgress)
def demo_progress(project: ProjectDep, session: SessionDep) -> DemoProgress:
    """How far creating the demo project got."""
    progress: dict[str, Any] = demo_service.demo_progress(session=session, project=project)
    return DemoProgress(**progress)
