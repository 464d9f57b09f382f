"""What the trainer reports to its caller, and what it returns.

The trainer knows nothing of databases or brokers: the Celery task passes a ``MetricSink`` that
writes ``run_metric`` rows, heartbeats and checkpoint rows, and uploads checkpoint files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

from app.evaluation import LabelMetrics
from worker.training.checkpoint import SavedCheckpoint

Split = Literal["train", "val"]


class MetricSink(Protocol):
    """Receives a run's progress. Calls come from the training thread, in step order."""

    def log_metrics(self, step: int, split: Split, values: Mapping[str, float]) -> None:
        """Record metric values (all finite) measured at ``step``."""
        ...

    def log(self, message: str) -> None:
        """Record a human-readable line for the run log."""
        ...

    def heartbeat(self, step: int, total_steps: int | None) -> None:
        """Say the run is alive; throttled by the trainer to one every few seconds."""
        ...

    def on_checkpoint(self, saved: SavedCheckpoint) -> None:
        """A checkpoint file was written (upload and record it before returning if needed)."""
        ...


@dataclass
class MemorySink:
    """A sink that keeps everything in lists: for tests, benchmarks and scripts."""

    metrics: list[tuple[int, Split, dict[str, float]]] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    heartbeats: list[tuple[int, int | None]] = field(default_factory=list)
    checkpoints: list[SavedCheckpoint] = field(default_factory=list)
    echo: bool = False  # also print messages

    def log_metrics(self, step: int, split: Split, values: Mapping[str, float]) -> None:
        """Append the values."""
        self.metrics.append((step, split, dict(values)))

    def log(self, message: str) -> None:
        """Append (and maybe print) the message."""
        self.messages.append(message)
        if self.echo:
            print(message, flush=True)

    def heartbeat(self, step: int, total_steps: int | None) -> None:
        """Append the heartbeat."""
        self.heartbeats.append((step, total_steps))

    def on_checkpoint(self, saved: SavedCheckpoint) -> None:
        """Append the checkpoint description."""
        self.checkpoints.append(saved)

    def series(self, split: Split, name: str) -> list[tuple[int, float]]:
        """Return (step, value) pairs of one metric."""
        return [(step, v[name]) for step, s, v in self.metrics if s == split and name in v]


@dataclass
class SplitEvaluation:
    """The best checkpoint's predictions on one split, with metrics at threshold 0.5."""

    split: Split
    scores: np.ndarray  # (n_images, n_labels) float32 probabilities, rows in ImageSet order
    metrics: dict[str, float]  # summary_metrics() plus "loss"
    per_label: list[LabelMetrics]
    cooccurrence_true: np.ndarray  # (n_labels, n_labels) int64
    cooccurrence_pred: np.ndarray  # same, for predictions at 0.5


StopReason = Literal["completed", "early_stopping", "time_budget", "cancelled"]


@dataclass
class TrainResult:
    """How a run ended; for a cancelled run only ``status``, ``stop_reason`` and ``step``."""

    status: Literal["succeeded", "cancelled"]
    stop_reason: StopReason
    step: int
    best: SavedCheckpoint | None = None
    last: SavedCheckpoint | None = None
    evaluations: dict[str, SplitEvaluation] = field(default_factory=dict)  # "val", "train"
