"""Scoring cached images with a model and turning scores into metrics (via app.evaluation)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from app.evaluation import binarize, cooccurrence, per_label_metrics, summary_metrics
from worker.training.runtime import Runtime
from worker.training.sink import Split, SplitEvaluation


@torch.no_grad()
def predict_logits(
    model: nn.Module, images: torch.Tensor, runtime: Runtime, batch_size: int
) -> torch.Tensor:
    """Return (N, n_labels) float32 CPU logits for uint8 (N, 3, H, W) images, eval mode."""
    was_training = model.training
    model.eval()
    chunks = []
    for start in range(0, images.shape[0], batch_size):
        with runtime.autocast():
            logits = model(runtime.to_input(images[start : start + batch_size]))
        chunks.append(logits.float().cpu())
    model.train(was_training)
    return torch.cat(chunks)


def validation_metrics(
    y_true: np.ndarray, logits: torch.Tensor, criterion: nn.Module, label_keys: Sequence[str]
) -> dict[str, float]:
    """Loss, summary metrics and per-label ``ap/<key>``, ``f1/<key>``; undefined values omitted."""
    loss = float(criterion(logits, torch.as_tensor(y_true, dtype=torch.float32)))
    scores = torch.sigmoid(logits).numpy()
    values = {"loss": loss, **summary_metrics(y_true, scores)}
    for key, label in zip(label_keys, per_label_metrics(y_true, scores), strict=True):
        values[f"ap/{key}"] = label.ap
        values[f"f1/{key}"] = label.f1
    # NaN (a label with no positives has no AP) is not a measurement; sinks store numbers.
    return {name: float(v) for name, v in values.items() if math.isfinite(v)}


def split_evaluation(
    split: Split, y_true: np.ndarray, logits: torch.Tensor, criterion: nn.Module
) -> SplitEvaluation:
    """Scores, metrics at 0.5 and co-occurrence matrices for one split."""
    scores = torch.sigmoid(logits).numpy().astype(np.float32)
    metrics = summary_metrics(y_true, scores)
    metrics["loss"] = float(criterion(logits, torch.as_tensor(y_true, dtype=torch.float32)))
    return SplitEvaluation(
        split=split,
        scores=scores,
        metrics=metrics,
        per_label=per_label_metrics(y_true, scores),
        cooccurrence_true=cooccurrence(y_true),
        cooccurrence_pred=cooccurrence(binarize(scores, 0.5)),
    )
