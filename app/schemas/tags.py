"""Tag schemas."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from app.schemas.common import ORMModel


class TagCreate(BaseModel):
    name: str
    color: str | None = None
    hotkey: str | None = None
    group: str | None = None


class TagUpdate(BaseModel):
    """Only the fields present in the request change; `hotkey`/`group` may be null to clear."""

    name: str | None = None
    color: str | None = None
    hotkey: str | None = None
    group: str | None = None
    archived: bool | None = None


class TagReorder(BaseModel):
    tag_ids: list[int] = Field(description="Every tag id of the project, in the new order")


class TagRead(ORMModel):
    id: int
    project_id: int
    name: str
    color: str
    hotkey: str | None
    group: str | None
    position: int
    archived: bool
    created_at: datetime
