"""Workflow schemas: the block graph (dataset → augmentations → model → training) and its check.

The graph is stored as JSON on `workflow.graph`; every block has defaults, so a partial graph
from an older client still parses. Unknown fields are refused so that typos do not pass silently.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.schemas.common import ORMModel

AssetSplit = Literal["auto", "train", "val", "test"]
# By default images marked "test" stay out of training and validation.
TRAINING_SPLITS: tuple[AssetSplit, ...] = ("auto", "train", "val")


class _Block(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatasetBlock(_Block):
    """Which tags and images to train on, and how validation images are chosen."""

    tag_ids: list[int] = Field(default_factory=list, description="Tags to train on")
    splits: list[AssetSplit] = Field(
        default_factory=lambda: list(TRAINING_SPLITS),
        description="Only labeled images whose split is one of these are used",
    )
    validation: Literal["auto", "split"] = Field(
        default="auto",
        description="auto: hold out val_percent of the images, stratified across tags; "
        "split: validate on the images marked 'val', train on those marked 'train' or 'auto'",
    )
    val_percent: float = Field(default=20.0, gt=0, lt=100)
    min_positives: int = Field(default=10, ge=1, description="Warn below this many positives")
    seed: int = Field(default=0, ge=0)


class AugmentationsBlock(_Block):
    """Train-time augmentations with their strengths (0 turns one off)."""

    hflip: float = Field(default=0.5, ge=0, le=1, description="Probability")
    vflip: float = Field(default=0.0, ge=0, le=1, description="Probability")
    rotation_degrees: float = Field(default=0.0, ge=0, le=180)
    brightness: float = Field(default=0.0, ge=0, le=1)
    contrast: float = Field(default=0.0, ge=0, le=1)
    crop_scale_min: float = Field(default=1.0, gt=0, le=1, description="1 = no random crop")


class ModelBlock(_Block):
    """The backbone, its input size (None = the backbone's default) and pretrained weights."""

    arch: str = "hgnetv2_b0"
    input_size: int | None = Field(default=None, ge=16, le=1024)
    pretrained: bool = True


class TrainingBlock(_Block):
    """Optimisation settings; the length is `length` in `length_unit`."""

    batch_size: int = Field(default=32, ge=1, le=4096)
    length_unit: Literal["epochs", "steps", "minutes"] = "epochs"
    length: float = Field(default=10.0, gt=0, le=1_000_000)
    lr: float = Field(default=1e-3, gt=0, le=10)
    optimizer: Literal["adamw", "sgd"] = "adamw"
    momentum: float = Field(default=0.9, ge=0, lt=1)
    weight_decay: float = Field(default=0.05, ge=0, le=1)
    schedule: Literal["cosine", "plateau"] = "cosine"
    warmup_steps: int = Field(default=0, ge=0)
    loss: Literal["bce", "asl"] = "bce"
    early_stopping_patience: int = Field(default=0, ge=0, description="Evaluations; 0 = off")
    monitor: Literal["map", "macro_f1", "micro_f1"] = "map"
    eval_interval: int = Field(default=0, ge=0, description="Steps; 0 = once per epoch")
    log_interval: int | None = Field(default=None, ge=1, description="Steps; None = automatic")


class WorkflowGraph(_Block):
    """The four blocks of a training workflow."""

    dataset: DatasetBlock = Field(default_factory=DatasetBlock)
    augmentations: AugmentationsBlock = Field(default_factory=AugmentationsBlock)
    model: ModelBlock = Field(default_factory=ModelBlock)
    training: TrainingBlock = Field(default_factory=TrainingBlock)


class WorkflowCreate(BaseModel):
    name: str = Field(default="Workflow", max_length=200)
    graph: WorkflowGraph | None = None


class WorkflowUpdate(BaseModel):
    """Only the fields present change; any change makes a new version."""

    name: str | None = Field(default=None, max_length=200)
    graph: WorkflowGraph | None = None


class TagCount(BaseModel):
    """A tag's positives among the images the dataset block selects."""

    id: int
    name: str
    color: str
    selected: bool
    positives: int
    train_positives: int = 0
    val_positives: int = 0


class WorkflowCheck(BaseModel):
    """What starting this workflow now would train on, what blocks it, and how long it takes."""

    errors: list[str]
    warnings: list[str]
    labeled_images: int
    train_images: int
    val_images: int
    tags: list[TagCount]
    input_size: int | None
    steps_per_epoch: int | None
    estimated_steps: int | None
    estimated_seconds: float | None = Field(
        description="From the speed measured by finished runs of the same backbone; "
        "None until one has finished"
    )
    measured_images_per_second: float | None


class WorkflowRead(ORMModel):
    id: int
    project_id: int
    name: str
    version: int
    graph: WorkflowGraph
    created_at: datetime
    updated_at: datetime


class ArchOption(BaseModel):
    name: str
    input_size: int


class WorkflowOptions(BaseModel):
    """Choices the builder offers: backbones with their default input size."""

    archs: list[ArchOption]
    default_graph: WorkflowGraph


class AugmentationPreviewRequest(BaseModel):
    augmentations: AugmentationsBlock = Field(default_factory=AugmentationsBlock)
    input_size: int = Field(default=160, ge=16, le=512)
    images: int = Field(default=4, ge=1, le=8)
    variants: int = Field(default=4, ge=1, le=8)
    seed: int = 0
