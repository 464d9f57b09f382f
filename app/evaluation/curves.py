"""Precision-recall and ROC curves, point for point as scikit-learn computes them.

``pr_curve`` matches ``sklearn.metrics.precision_recall_curve`` (default arguments) and
``roc_curve`` matches ``sklearn.metrics.roc_curve`` (``drop_intermediate=True``, a leading
``inf`` threshold). A curve over 20,000 images has up to 20,000 points, so the ``*_points``
helpers thin it with ``downsample_curve`` and return JSON-ready dicts for the browser.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from app.evaluation._validation import ArrayLike, FloatArray, as_column_pair, as_pair

DEFAULT_MAX_POINTS = 200


def _counts_at_thresholds(
    y_true_col: ArrayLike, scores_col: ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Return (fps, tps, thresholds) at each distinct score, thresholds decreasing."""
    labels, values = as_column_pair(y_true_col, scores_col)
    if labels.shape[0] == 0:
        raise ValueError("a curve needs at least one image")
    order = np.argsort(-values[:, 0], kind="stable")
    sorted_scores = values[order, 0]
    sorted_true = labels[order, 0]
    # The last index of each run of equal scores is where thresholding at that score lands.
    ends = np.flatnonzero(np.diff(sorted_scores) != 0)
    ends = np.append(ends, sorted_scores.size - 1)
    tps = np.cumsum(sorted_true, dtype=np.float64)[ends]
    fps = (ends + 1) - tps
    return fps, tps, sorted_scores[ends]


def pr_curve(
    y_true_col: ArrayLike, scores_col: ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Return (precision, recall, thresholds) as ``sklearn.metrics.precision_recall_curve``.

    Thresholds increase; precision and recall have one more point, the (recall 0, precision 1)
    end. Without positives recall is 1 everywhere, as in sklearn.
    """
    fps, tps, thresholds = _counts_at_thresholds(y_true_col, scores_col)
    predicted = tps + fps
    precision = np.divide(tps, predicted, out=np.zeros_like(tps), where=predicted != 0)
    recall = tps / tps[-1] if tps[-1] > 0 else np.ones_like(tps)
    return (
        np.append(precision[::-1], 1.0),
        np.append(recall[::-1], 0.0),
        thresholds[::-1].copy(),
    )


def roc_curve(
    y_true_col: ArrayLike, scores_col: ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Return (fpr, tpr, thresholds) as ``sklearn.metrics.roc_curve`` with its defaults.

    Collinear points are dropped, the curve starts at (0, 0) with threshold ``inf``, and a rate
    whose class is absent is NaN throughout.
    """
    fps, tps, thresholds = _counts_at_thresholds(y_true_col, scores_col)
    if fps.size > 2:
        # Keep a point only where the curve bends, as sklearn does.
        keep = np.concatenate(([True], (np.diff(fps, 2) != 0) | (np.diff(tps, 2) != 0), [True]))
        fps, tps, thresholds = fps[keep], tps[keep], thresholds[keep]
    fps = np.append(0.0, fps)
    tps = np.append(0.0, tps)
    thresholds = np.append(np.inf, thresholds)
    fpr = fps / fps[-1] if fps[-1] > 0 else np.full(fps.shape, np.nan)
    tpr = tps / tps[-1] if tps[-1] > 0 else np.full(tps.shape, np.nan)
    return fpr, tpr, thresholds


def micro_pr_curve(
    y_true: ArrayLike, scores: ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Return the micro-averaged ("all tags") PR curve: every (image, label) pair as one sample."""
    labels, values = as_pair(y_true, scores)
    return pr_curve(labels.ravel(), values.ravel())


def downsample_curve(
    x: ArrayLike,
    y: ArrayLike,
    *extra: ArrayLike,
    max_points: int = DEFAULT_MAX_POINTS,
) -> tuple[FloatArray, ...]:
    """Keep at most ``max_points`` points of a curve, always its first and last.

    Points are picked at even steps of path length in the (x, y) plane, so steep and flat
    stretches both keep their shape; ``extra`` columns (thresholds) are thinned alongside.
    NaN coordinates (an undefined ROC rate) fall back to even steps of index.
    """
    if max_points < 2:
        raise ValueError("max_points must be at least 2")
    columns = [np.asarray(column, dtype=np.float64) for column in (x, y, *extra)]
    size = columns[0].size
    if any(column.shape != (size,) for column in columns):
        raise ValueError("curve columns must be 1-D and of equal length")
    if size <= max_points:
        return tuple(columns)
    steps = np.hypot(np.diff(columns[0]), np.diff(columns[1]))
    if np.isfinite(steps).all() and steps.sum() > 0:
        length = np.concatenate(([0.0], np.cumsum(steps)))
        targets = np.linspace(0.0, length[-1], max_points)
        keep = np.searchsorted(length, targets, side="left")
    else:
        keep = np.linspace(0, size - 1, max_points).round().astype(np.int64)
    keep = np.unique(np.concatenate(([0], keep, [size - 1])))
    return tuple(column[keep] for column in columns)


def _json_list(values: FloatArray) -> list[float | None]:
    return [None if not math.isfinite(value) else float(value) for value in values.tolist()]


def _points(names: Sequence[str], columns: Sequence[FloatArray]) -> dict[str, list[float | None]]:
    return {name: _json_list(column) for name, column in zip(names, columns, strict=True)}


def pr_curve_points(
    y_true_col: ArrayLike, scores_col: ArrayLike, max_points: int = DEFAULT_MAX_POINTS
) -> dict[str, list[float | None]]:
    """Return a thinned PR curve as ``{"precision", "recall", "thresholds"}`` lists.

    All three lists have equal length: the final (recall 0, precision 1) point has threshold None.
    """
    precision, recall, thresholds = pr_curve(y_true_col, scores_col)
    padded = np.append(thresholds, np.nan)
    columns = downsample_curve(recall, precision, padded, max_points=max_points)
    return _points(("recall", "precision", "thresholds"), columns)


def micro_pr_curve_points(
    y_true: ArrayLike, scores: ArrayLike, max_points: int = DEFAULT_MAX_POINTS
) -> dict[str, list[float | None]]:
    """Return the thinned micro-averaged PR curve in the ``pr_curve_points`` format."""
    labels, values = as_pair(y_true, scores)
    return pr_curve_points(labels.ravel(), values.ravel(), max_points=max_points)


def roc_curve_points(
    y_true_col: ArrayLike, scores_col: ArrayLike, max_points: int = DEFAULT_MAX_POINTS
) -> dict[str, list[float | None]]:
    """Return a thinned ROC curve as ``{"fpr", "tpr", "thresholds"}`` lists (inf becomes None)."""
    fpr, tpr, thresholds = roc_curve(y_true_col, scores_col)
    columns = downsample_curve(fpr, tpr, thresholds, max_points=max_points)
    return _points(("fpr", "tpr", "thresholds"), columns)
