"""Training run schemas: summaries for lists, details for the dashboard, metrics, logs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from app.models import TrainingRun, utcnow
from app.schemas.common import ORMModel


class RunStart(BaseModel):
    workflow_id: int
    name: str | None = Field(default=None, max_length=200)


class RunRead(ORMModel):
    """A run as the runs list and the dashboard's progress bar show it."""

    id: int
    project_id: int
    workflow_id: int | None
    name: str
    status: str
    cancel_requested: bool
    step: int
    total_steps: int
    attempts: int
    arch: str | None = None
    input_size: int | None = None
    best_metric_name: str | None
    best_metric_value: float | None
    images_per_second: float | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    error: str | None
    worker_hostname: str | None
    duration_seconds: float | None = None
    eta_seconds: float | None = None

    @classmethod
    def from_run(cls, run: TrainingRun) -> RunRead:
        """Summarise a run row, with its backbone, duration and remaining time."""
        read = cls.model_validate(run)
        config = (run.workflow_snapshot or {}).get("train_config") or {}
        read.arch = config.get("arch")
        read.input_size = config.get("input_size")
        if run.started_at is not None:
            end = run.finished_at or utcnow()
            read.duration_seconds = max(0.0, (end - run.started_at).total_seconds())
            if run.status == "running" and run.step > 0 and run.total_steps > run.step:
                per_step = read.duration_seconds / run.step
                read.eta_seconds = per_step * (run.total_steps - run.step)
        return read


class RunDetail(RunRead):
    """A run with its frozen configuration and a summary of its frozen dataset."""

    workflow_snapshot: dict[str, Any] = Field(default_factory=dict)
    dataset: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def from_run(cls, run: TrainingRun) -> RunDetail:
        """The summary plus the configuration and the dataset's tags, counts and label hash."""
        base = RunRead.from_run(run).model_dump()
        snapshot = run.dataset_snapshot or {}
        dataset = {key: snapshot.get(key) for key in (
            "tags", "counts", "validation", "val_percent", "splits", "seed", "label_hash"
        )}  # fmt: skip
        return cls(**base, workflow_snapshot=run.workflow_snapshot or {}, dataset=dataset)


class MetricRead(ORMModel):
    id: int
    step: int
    split: str
    name: str
    value: float


class LogRead(ORMModel):
    id: int
    created_at: datetime
    level: str
    message: str


class CheckpointRead(ORMModel):
    id: int
    run_id: int
    kind: str
    step: int
    metric_name: str | None
    metric_value: float | None
    metrics: dict[str, float]
    sha256: str
    bytes: int
    created_at: datetime
