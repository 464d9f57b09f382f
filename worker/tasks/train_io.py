"""What the training task hands the trainer: data read from blob storage, and a sink that
writes progress to the database and checkpoints to blob storage.

No Celery tasks here; `worker.tasks.train` wires these together.
"""

from __future__ import annotations

import io
import logging
import math
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from app.db import session_scope
from app.evaluation import evaluate_split
from app.models import Evaluation
from app.services import run_progress
from app.storage import BlobNotFound, BlobStore
from worker.training.checkpoint import SavedCheckpoint
from worker.training.data import ImageSet, TrainData
from worker.training.sink import Split, SplitEvaluation

logger = logging.getLogger(__name__)

# Decoded images beyond this size are memory-mapped from the work dir instead of held in RAM.
IN_MEMORY_CACHE_BYTES = 2 * 1024**3
# How often the cancel flag is read: about every step, without a query per fast step.
CANCEL_POLL_S = 0.25


def checkpoint_key(run_id: int, kind: str) -> str:
    """Blob key of a run's `best` or `last` checkpoint."""
    return f"runs/{run_id}/checkpoints/{kind}.pt"


def scores_key(run_id: int, split: str) -> str:
    """Blob key of a run's per-image score matrix on `split`."""
    return f"runs/{run_id}/scores_{split}.npz"


class SnapshotData:
    """A run's frozen dataset snapshot as the trainer's `TrainData`, read through blob storage."""

    def __init__(self, snapshot: Mapping[str, Any], store: BlobStore) -> None:
        self.tag_ids = [int(tag["id"]) for tag in snapshot["tags"]]
        self.tag_names = [str(tag["name"]) for tag in snapshot["tags"]]
        column = {tag_id: i for i, tag_id in enumerate(self.tag_ids)}
        assets = snapshot["assets"]
        self.store = store
        self.rows: dict[str, list[int]] = {"train": [], "val": []}
        for index, split in enumerate(assets["split"]):
            self.rows[split].append(index)
        self.asset_ids = [int(a) for a in assets["ids"]]
        self.keys = [str(k) for k in assets["keys"]]
        self.labels = np.zeros((len(self.asset_ids), len(self.tag_ids)), dtype=np.uint8)
        for index, tag_ids in enumerate(assets["labels"]):
            for tag_id in tag_ids:
                self.labels[index, column[int(tag_id)]] = 1

    def split_asset_ids(self, split: str) -> np.ndarray:
        """Asset ids of a split, in the trainer's row order."""
        return np.asarray([self.asset_ids[i] for i in self.rows[split]], dtype=np.int64)

    def split_truth(self, split: str) -> np.ndarray:
        """The (n, k) 0/1 ground truth of a split, in the trainer's row order."""
        return self.labels[self.rows[split]]

    def image_set(self, split: str) -> ImageSet:
        """The images of one split, fetched from blob storage on demand."""
        rows = self.rows[split]

        def open_image(position: int) -> bytes:
            index = rows[position]
            try:
                return self.store.read_bytes(self.keys[index])
            except BlobNotFound:
                raise ValueError(
                    f"image {self.asset_ids[index]} is missing from storage ({self.keys[index]})"
                ) from None

        return ImageSet(open_image=open_image, labels=self.split_truth(split))

    def train_data(self, *, input_size: int, work_dir: Path) -> TrainData:
        """The trainer's dataset; large ones are cached on disk under `work_dir`."""
        decoded_bytes = len(self.asset_ids) * 3 * input_size * input_size
        return TrainData(
            label_keys=[str(t) for t in self.tag_ids],
            label_names=self.tag_names,
            train=self.image_set("train"),
            val=self.image_set("val"),
            cache_dir=work_dir / "cache" if decoded_bytes > IN_MEMORY_CACHE_BYTES else None,
        )


class DatabaseSink:
    """The trainer's MetricSink for one claimed run: rows in the database, files in blobs."""

    def __init__(self, *, run_id: int, attempt: int, batch_size: int, store: BlobStore) -> None:
        self.run_id = run_id
        self.attempt = attempt
        self.batch_size = batch_size
        self.store = store
        self.lost = False
        self.val_metrics: dict[str, float] = {}
        self._train_marks: list[tuple[int, float]] = []  # (step, monotonic time), first and last
        self._checked_at = -1.0
        self._stop = False

    def log_metrics(self, step: int, split: Split, values: Mapping[str, float]) -> None:
        """Write metric rows; remember validation values for the next checkpoint row."""
        if split == "train":
            mark = (step, time.monotonic())
            self._train_marks = [self._train_marks[0], mark] if self._train_marks else [mark]
        else:
            self.val_metrics = dict(values)
        with session_scope() as session:
            run_progress.add_metrics(
                session=session, run_id=self.run_id, step=step, split=split, values=values
            )

    def log(self, message: str) -> None:
        """Append a line to the run log."""
        with session_scope() as session:
            run_progress.add_log(session=session, run_id=self.run_id, message=message)

    def heartbeat(self, step: int, total_steps: int | None) -> None:
        """Record progress (the trainer throttles these to one every few seconds)."""
        with session_scope() as session:
            if not run_progress.beat(
                session=session,
                run_id=self.run_id,
                attempt=self.attempt,
                step=step,
                total_steps=total_steps,
            ):
                self.lost = True

    def on_checkpoint(self, saved: SavedCheckpoint) -> None:
        """Upload the checkpoint file, then record it (a reader never sees a row first)."""
        if self.lost:
            return
        key = checkpoint_key(self.run_id, saved.kind)
        with saved.path.open("rb") as stream:
            self.store.put(key, stream, "application/octet-stream")
        with session_scope() as session:
            run_progress.save_checkpoint(
                session=session,
                run_id=self.run_id,
                kind=saved.kind,
                step=saved.step,
                metric_name=saved.metric_name,
                metric_value=saved.metric_value,
                metrics=self.val_metrics,
                storage_key=key,
                sha256=saved.sha256,
                size=saved.size_bytes,
            )

    def should_cancel(self) -> bool:
        """True once the run was cancelled or taken over; reads the flag at most every 0.25s."""
        if self._stop or self.lost:
            return True
        now = time.monotonic()
        if now - self._checked_at >= CANCEL_POLL_S:
            self._checked_at = now
            with session_scope() as session:
                state = run_progress.run_state(
                    session=session, run_id=self.run_id, attempt=self.attempt
                )
            self.lost = state == "lost"
            self._stop = state != "own"
        return self._stop

    def images_per_second(self) -> float | None:
        """Training throughput between the first and last train-loss records (evals included)."""
        if len(self._train_marks) < 2:
            return None
        (first_step, first_time), (last_step, last_time) = self._train_marks
        if last_time <= first_time or last_step <= first_step:
            return None
        return (last_step - first_step) * self.batch_size / (last_time - first_time)


class Heartbeat(threading.Thread):
    """Beats for the run every `interval` seconds while the worker process lives.

    The trainer beats between steps, but a long evaluation or upload would look like a dead
    worker to the reaper; this thread proves the process is alive whatever the trainer does.
    """

    def __init__(self, *, run_id: int, attempt: int, interval: float) -> None:
        super().__init__(name=f"heartbeat-run-{run_id}", daemon=True)
        self.run_id = run_id
        self.attempt = attempt
        self.interval = interval
        self._done = threading.Event()

    def run(self) -> None:
        """Beat until stopped or the run is no longer ours."""
        while not self._done.wait(self.interval):
            try:
                with session_scope() as session:
                    if not run_progress.beat(
                        session=session, run_id=self.run_id, attempt=self.attempt
                    ):
                        return
            except Exception:  # a database hiccup must not end the heartbeat for good
                logger.warning("heartbeat of run %s failed", self.run_id, exc_info=True)

    def stop(self) -> None:
        """Stop beating (the thread ends within one interval)."""
        self._done.set()


def store_evaluations(
    *,
    run_id: int,
    data: SnapshotData,
    evaluations: Mapping[str, SplitEvaluation],
    checkpoint_id: int | None,
    best_step: int | None,
    store: BlobStore,
) -> list[Evaluation]:
    """Write each split's score matrix (npz) and build its `evaluation` row at threshold 0.5."""
    rows = []
    tag_ids = np.asarray(data.tag_ids, dtype=np.int64)
    for split, evaluation in evaluations.items():
        truth = data.split_truth(split).astype(np.uint8)
        scores = np.asarray(evaluation.scores, dtype=np.float32)
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer, asset_ids=data.split_asset_ids(split), tag_ids=tag_ids, scores=scores,
            truth=truth,
        )  # fmt: skip
        key = scores_key(run_id, split)
        store.put(key, buffer.getvalue(), "application/octet-stream")
        report = evaluate_split(truth, scores, 0.5)
        cooccurrence = report.pop("cooccurrence")
        loss = evaluation.metrics.get("loss")
        report["loss"] = float(loss) if loss is not None and math.isfinite(loss) else None
        report["tag_ids"] = data.tag_ids
        report["step"] = best_step
        rows.append(
            Evaluation(
                run_id=run_id,
                checkpoint_id=checkpoint_id,
                split=split,
                scores_key=key,
                metrics=report,
                thresholds={"default": 0.5},
                cooccurrence={**cooccurrence, "threshold": 0.5, "tag_ids": data.tag_ids},
            )
        )
    return rows
