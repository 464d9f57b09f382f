"""Batch prediction job schemas."""

from __future__ import annotations

from datetime import datetime

from app.schemas.common import ORMModel


class PredictionJobRead(ORMModel):
    id: int
    project_id: int
    deployment_id: int | None
    status: str
    total: int
    processed: int
    failed: int
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
