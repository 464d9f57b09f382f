"""Deployment and prediction schemas."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from app.schemas.common import ORMModel


class DeploymentCreate(BaseModel):
    run_id: int
    checkpoint: Literal["best", "last"] = "best"
    name: str = Field(default="", max_length=200)
    make_default: bool = False
    quantize: bool = Field(default=False, description="Also build a dynamic-INT8 model")


class DeploymentUpdate(BaseModel):
    """Only the fields present change."""

    name: str | None = Field(default=None, max_length=200)
    active: bool | None = None
    is_default: bool | None = None
    thresholds: dict[str, Any] | float | None = Field(
        default=None, description="One value for every tag, or {tag name or id: value}"
    )


class DeploymentRead(ORMModel):
    id: int
    project_id: int
    run_id: int | None
    checkpoint_id: int | None
    name: str
    version: int
    status: str
    active: bool
    is_default: bool
    labels: list[dict[str, Any]]
    thresholds: list[float]
    preprocessing: dict[str, Any]
    verify_max_diff: float | None
    error: str | None
    int8_report: dict[str, Any] | None
    has_int8: bool = False
    created_at: datetime

    @classmethod
    def of(cls, deployment: Any) -> DeploymentRead:
        """Build from a row, filling ``has_int8``."""
        read = cls.model_validate(deployment)
        read.has_int8 = bool(deployment.int8_key)
        return read


class TagPrediction(BaseModel):
    tag_id: int | None
    name: str
    score: float
    threshold: float
    predicted: bool


class ImagePrediction(BaseModel):
    file: str
    tags: list[TagPrediction] = Field(description="By descending score (the top k if asked)")
    predicted: list[str] = Field(description="Names of the predicted tags")


class PredictResponse(BaseModel):
    deployment_id: int
    version: int
    deployment_name: str
    images: list[ImagePrediction]
