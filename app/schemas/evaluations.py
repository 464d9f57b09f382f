"""Evaluation schemas (reports are plain JSON documents built by the evaluation service)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class ThresholdsUpdate(BaseModel):
    """Save a checkpoint's thresholds: the optimised ones, or custom values.

    With ``mode="custom"``, ``all`` sets every tag first, then ``values`` override single tags.
    """

    checkpoint: Literal["best", "last"] = "best"
    mode: Literal["optimized", "custom"] = "custom"
    values: dict[str, Any] | None = Field(default=None, description="{tag id or name: value}")
    all: Any = Field(default=None, description="One threshold for every tag ('set all')")


class ScoreRequest(BaseModel):
    checkpoint: Literal["best", "last"] = "last"


class ScoreQueued(BaseModel):
    queued: list[str]
