"""JSON-ready evaluation reports of one split, as stored on an ``evaluation`` row and served."""

from __future__ import annotations

from typing import Any

import numpy as np

from app.evaluation._validation import ArrayLike, as_pair, as_thresholds
from app.evaluation.cooccurrence import cooccurrence_matrices
from app.evaluation.curves import (
    DEFAULT_MAX_POINTS,
    micro_pr_curve_points,
    pr_curve_points,
    roc_curve_points,
)
from app.evaluation.jsonable import json_ready
from app.evaluation.metrics import per_label_metrics, summary_metrics


def evaluate_split(y_true: ArrayLike, scores: ArrayLike, thresholds: ArrayLike) -> dict[str, Any]:
    """Return counts, summary and per-label metrics and co-occurrence matrices as plain JSON.

    Keys: ``counts`` (``images``, ``labels``, ``positives`` and ``predicted`` per label),
    ``thresholds`` (per label), ``summary``, ``per_label`` (``LabelMetrics.to_dict()`` rows) and
    ``cooccurrence`` (``truth``, ``predicted``, ``difference`` as nested lists). NaN is None.
    """
    labels, values = as_pair(y_true, scores)
    per_label_thresholds = as_thresholds(thresholds, values.shape[1])
    predicted = values >= per_label_thresholds
    report = {
        "counts": {
            "images": values.shape[0],
            "labels": values.shape[1],
            "positives": np.count_nonzero(labels, axis=0),
            "predicted": np.count_nonzero(predicted, axis=0),
        },
        "thresholds": per_label_thresholds,
        "summary": summary_metrics(labels, values, per_label_thresholds),
        "per_label": [
            row.to_dict() for row in per_label_metrics(labels, values, per_label_thresholds)
        ],
        "cooccurrence": cooccurrence_matrices(labels, values, per_label_thresholds),
    }
    result: dict[str, Any] = json_ready(report)
    return result


def curve_report(
    y_true: ArrayLike, scores: ArrayLike, max_points: int = DEFAULT_MAX_POINTS
) -> dict[str, Any]:
    """Return thinned PR and ROC curves per label plus the micro-averaged PR curve, as JSON.

    Shape: ``{"micro_pr": {...}, "per_label": [{"index", "pr", "roc"}, ...]}`` with the
    ``pr_curve_points`` / ``roc_curve_points`` formats; needs at least one image.
    """
    labels, values = as_pair(y_true, scores)
    return {
        "micro_pr": micro_pr_curve_points(labels, values, max_points=max_points),
        "per_label": [
            {
                "index": index,
                "pr": pr_curve_points(labels[:, index], values[:, index], max_points),
                "roc": roc_curve_points(labels[:, index], values[:, index], max_points),
            }
            for index in range(values.shape[1])
        ],
    }
