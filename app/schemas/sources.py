"""Schemas of storage sources and their sync jobs. Secrets go in, never out."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class SourceCreate(BaseModel):
    kind: Literal["s3", "azure", "folder"]
    name: str = ""
    settings: dict[str, str | None] = Field(
        default_factory=dict,
        description="s3: bucket, region, endpoint_url; azure: container, account_url; "
                    "folder: path",
    )
    secrets: dict[str, str | None] = Field(
        default_factory=dict,
        description="s3: access_key_id, secret_access_key; azure: connection_string, "
                    "account_key, sas_token. Stored encrypted, never returned.",
    )
    prefix: str = ""
    remove_missing: bool = False


class SourceUpdate(BaseModel):
    """Only the fields present change; a secret given as "" is cleared."""

    name: str | None = None
    settings: dict[str, str | None] | None = None
    secrets: dict[str, str | None] | None = None
    prefix: str | None = None
    remove_missing: bool | None = None


class SyncErrorRead(BaseModel):
    key: str
    message: str


class SyncJobRead(BaseModel):
    id: int
    source_id: int
    status: str
    total: int
    processed: int
    imported: int
    updated: int
    duplicates: int
    removed: int
    failed: int
    errors: list[SyncErrorRead]
    error: str | None
    removed_keys: list[str]
    heartbeat_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    created_at: datetime


class SourceRead(BaseModel):
    id: int
    project_id: int
    kind: str
    name: str
    settings: dict[str, str]
    secret_hints: dict[str, str] = Field(description="Masked hints such as '••••b1c2'")
    prefix: str
    remove_missing: bool
    last_sync_at: datetime | None
    created_at: datetime
    last_job: SyncJobRead | None
