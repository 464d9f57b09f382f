"""Project schemas."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from app.schemas.common import ORMModel


class ProjectCreate(BaseModel):
    name: str = Field(max_length=200)
    description: str = ""


class ProjectUpdate(BaseModel):
    name: str | None = Field(default=None, max_length=200)
    description: str | None = None


class ProjectDelete(BaseModel):
    confirm_name: str


class ProjectRead(ORMModel):
    id: int
    name: str
    description: str
    created_at: datetime
    image_count: int = 0
    tag_count: int = 0
