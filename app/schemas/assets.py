"""Schemas of single assets and of upload results."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

Split = Literal["auto", "train", "val", "test"]


class AssetRead(BaseModel):
    """One image with its facts, tags and where its bytes can be fetched."""

    id: int
    project_id: int
    original_filename: str
    sha256: str
    width: int
    height: int
    mime: str
    bytes: int
    split: str
    review_state: str
    source_id: int | None
    tag_ids: list[int]
    file_url: str
    thumb_url: str
    created_at: datetime
    updated_at: datetime


class AssetUpdate(BaseModel):
    split: Split


class FileResultRead(BaseModel):
    """One uploaded file (or archive member): created, duplicate of `asset_id`, or rejected."""

    filename: str
    archive: str | None = None
    status: Literal["created", "duplicate", "rejected"]
    asset_id: int | None = None
    reason: str | None = None
    thumb_url: str | None = None


class UploadRead(BaseModel):
    """Per-file results of one upload request, in upload order, with totals."""

    created: int
    duplicates: int
    rejected: int
    results: list[FileResultRead]
