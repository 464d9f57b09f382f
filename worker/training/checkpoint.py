"""Self-describing checkpoints and where they are kept.

A checkpoint carries everything needed to resume a run or to export and serve its model without
the database: weights, optimizer/schedule/scaler state, step, metrics, the config, the label keys
and names, the architecture and input size. Files are written under a temporary name and renamed,
so a reader never sees half a checkpoint.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import torch

from app.inference.preprocess import IMAGENET_MEAN, IMAGENET_STD

CheckpointKind = Literal["best", "last"]
FORMAT_VERSION = 1


@dataclass
class Checkpoint:
    """The full state of a run at one step."""

    kind: CheckpointKind
    step: int
    epoch: int
    train_seconds: float
    arch: str
    input_size: int
    label_keys: list[str]
    label_names: list[str]
    config: dict[str, Any]
    model_state: dict[str, torch.Tensor]
    optimizer_state: dict[str, Any]
    schedule_state: dict[str, Any]
    scaler_state: dict[str, Any] | None
    metrics: dict[str, float]  # validation metrics at this step
    monitor: str
    monitor_value: float
    best_value: float  # best monitored value so far (early stopping state)
    best_step: int
    evals_since_best: int
    preprocess: dict[str, Any] = field(
        default_factory=lambda: {
            "resize": "squash",
            "resample": "bilinear",
            "mean": list(IMAGENET_MEAN),
            "std": list(IMAGENET_STD),
        }
    )
    format_version: int = FORMAT_VERSION

    def to_payload(self) -> dict[str, Any]:
        """Return a dict of tensors and plain Python values, loadable with weights_only=True."""
        # Not dataclasses.asdict: it would deep-copy every tensor of the model and optimizer.
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Checkpoint:
        """Rebuild from ``to_payload()`` output, refusing unknown formats."""
        version = payload.get("format_version")
        if version != FORMAT_VERSION:
            raise ValueError(f"unsupported checkpoint format {version!r}")
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in payload.items() if k in names})


def read_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Load a checkpoint file onto the CPU (tensors and plain values only, no pickled code)."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    return Checkpoint.from_payload(payload)


def write_checkpoint_atomic(checkpoint: Checkpoint, path: Path) -> tuple[str, int]:
    """Write to a temporary file beside ``path``, fsync, rename; return (sha256, bytes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as temp:
            torch.save(checkpoint.to_payload(), temp)
            temp.flush()
            os.fsync(temp.fileno())
        digest = _sha256(Path(temp_name))
        size = os.path.getsize(temp_name)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return digest, size


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class SavedCheckpoint:
    """A checkpoint that now exists on local disk; the caller may upload it and record it."""

    kind: CheckpointKind
    step: int
    metric_name: str
    metric_value: float
    path: Path
    sha256: str
    size_bytes: int


class CheckpointStore(Protocol):
    """Keeps the latest ``best`` and ``last`` checkpoints of one run."""

    def save(self, checkpoint: Checkpoint) -> SavedCheckpoint:
        """Persist atomically, replacing the previous checkpoint of the same kind."""
        ...

    def load(self, kind: CheckpointKind) -> Checkpoint | None:
        """Return the stored checkpoint of ``kind``, or None."""
        ...


class LocalCheckpointStore:
    """``best.pt`` and ``last.pt`` in one directory."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def path(self, kind: CheckpointKind) -> Path:
        """Return the file that holds checkpoints of ``kind``."""
        return self.directory / f"{kind}.pt"

    def save(self, checkpoint: Checkpoint) -> SavedCheckpoint:
        """Write the checkpoint atomically and describe the file."""
        path = self.path(checkpoint.kind)
        digest, size = write_checkpoint_atomic(checkpoint, path)
        return SavedCheckpoint(
            checkpoint.kind,
            checkpoint.step,
            checkpoint.monitor,
            checkpoint.monitor_value,
            path,
            digest,
            size,
        )

    def load(self, kind: CheckpointKind) -> Checkpoint | None:
        """Read the checkpoint of ``kind`` if one was saved."""
        path = self.path(kind)
        return read_checkpoint(path) if path.is_file() else None
