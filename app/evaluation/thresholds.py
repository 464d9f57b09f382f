"""Decision thresholds: sweeps over a grid, and the per-label thresholds that maximise F1.

Prediction rule everywhere: a label is predicted when ``score >= threshold``.

``optimal_thresholds`` picks, per label, the score value that maximises F1 among the label's
distinct score values (thresholding anywhere between two neighbouring values gives the same
predictions, so no other candidate can do better). When several values reach the same F1 the
highest one wins: it predicts fewer images, i.e. the fewest false positives for that F1. A label
without positives has no F1 to maximise and gets ``fallback`` (0.5 by default).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from app.evaluation._validation import ArrayLike, FloatArray, IntArray, as_pair
from app.evaluation.jsonable import json_ready
from app.evaluation.metrics import safe_divide

DEFAULT_FALLBACK = 0.5
# 0.00, 0.01, ..., 1.00, rounded so each entry is the double nearest to the decimal a user types.
DEFAULT_GRID: FloatArray = np.round(np.linspace(0.0, 1.0, 101), 2)

LabeledScores = tuple[ArrayLike, ArrayLike]


@dataclass(frozen=True)
class ThresholdSweep:
    """Metrics at each threshold of a grid.

    ``precision``/``recall``/``f1`` are micro-averaged and ``jaccard`` sample-averaged, with one
    global threshold for all labels (shape (G,)); ``label_*`` are per label (shape (n_labels, G)).
    """

    thresholds: FloatArray
    precision: FloatArray
    recall: FloatArray
    f1: FloatArray
    jaccard: FloatArray
    label_precision: FloatArray
    label_recall: FloatArray
    label_f1: FloatArray

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict of nested lists."""
        return {
            "thresholds": json_ready(self.thresholds),
            "precision": json_ready(self.precision),
            "recall": json_ready(self.recall),
            "f1": json_ready(self.f1),
            "jaccard": json_ready(self.jaccard),
            "per_label": {
                "precision": json_ready(self.label_precision),
                "recall": json_ready(self.label_recall),
                "f1": json_ready(self.label_f1),
            },
        }


def _count_at_or_above(bins: IntArray, groups: IntArray, n_groups: int, n_bins: int) -> IntArray:
    """Per group, how many entries have ``score >= grid[g]`` for every grid index g.

    ``bins`` holds, per entry, how many grid values are <= its score, so the entry clears
    ``grid[g]`` exactly when its bin is above g: a histogram then a reversed cumulative sum.
    """
    histogram = np.bincount(groups * n_bins + bins, minlength=n_groups * n_bins)
    histogram = histogram.reshape(n_groups, n_bins)
    at_or_above = np.cumsum(histogram[:, ::-1], axis=1)[:, ::-1]
    return at_or_above[:, 1:].astype(np.int64)


def threshold_sweep(
    y_true: ArrayLike, scores: ArrayLike, grid: ArrayLike | None = None
) -> ThresholdSweep:
    """Return metrics at every threshold of ``grid`` (default 0.00 to 1.00 by 0.01).

    The grid is sorted and de-duplicated. Cost is one pass of histograms, not one per threshold.
    """
    labels, values = as_pair(y_true, scores)
    thresholds = np.unique(np.asarray(DEFAULT_GRID if grid is None else grid, dtype=np.float64))
    if thresholds.ndim != 1 or thresholds.size == 0 or np.isnan(thresholds).any():
        raise ValueError("grid must be a non-empty 1-D array of numbers")
    n_images, n_labels = values.shape
    n_bins = thresholds.size + 1
    bins = np.searchsorted(thresholds, values, side="right").astype(np.int64)

    label_ids = np.broadcast_to(np.arange(n_labels, dtype=np.int64), values.shape)
    image_ids = np.broadcast_to(np.arange(n_images, dtype=np.int64)[:, None], values.shape)
    label_predicted = _count_at_or_above(bins.ravel(), label_ids.ravel(), n_labels, n_bins)
    label_tp = _count_at_or_above(bins[labels], label_ids[labels], n_labels, n_bins)
    image_predicted = _count_at_or_above(bins.ravel(), image_ids.ravel(), n_images, n_bins)
    image_hits = _count_at_or_above(bins[labels], image_ids[labels], n_images, n_bins)

    support = np.count_nonzero(labels, axis=0)[:, None]
    true_per_image = np.count_nonzero(labels, axis=1)[:, None]
    tp, predicted, positives = label_tp.sum(axis=0), label_predicted.sum(axis=0), support.sum()
    union = true_per_image + image_predicted - image_hits
    jaccard = safe_divide(image_hits, union).mean(axis=0) if n_images else np.zeros(thresholds.size)
    return ThresholdSweep(
        thresholds=thresholds,
        precision=safe_divide(tp, predicted),
        recall=safe_divide(tp, positives),
        f1=safe_divide(2 * tp, predicted + positives),
        jaccard=jaccard,
        label_precision=safe_divide(label_tp, label_predicted),
        label_recall=safe_divide(label_tp, support),
        label_f1=safe_divide(2 * label_tp, label_predicted + support),
    )


def best_f1_thresholds(
    y_true: ArrayLike, scores: ArrayLike, fallback: float = DEFAULT_FALLBACK
) -> tuple[FloatArray, FloatArray]:
    """Return per-label (threshold, F1 at it); labels without positives get (fallback, NaN)."""
    labels, values = as_pair(y_true, scores)
    n_images, n_labels = values.shape
    thresholds = np.full(n_labels, float(fallback))
    best_f1 = np.full(n_labels, np.nan)
    if n_images == 0:
        return thresholds, best_f1
    # One row per label, contiguous; the order inside a run of ties does not matter (only run
    # ends are candidates), so the default unstable sort is fine.
    negated = np.ascontiguousarray(-values.T)
    order = np.argsort(negated, axis=1)
    sorted_scores = -np.take_along_axis(negated, order, axis=1)
    sorted_true = np.take_along_axis(np.ascontiguousarray(labels.T), order, axis=1)
    tps = np.cumsum(sorted_true, axis=1, dtype=np.int64)
    positives = tps[:, -1:]
    predicted = np.arange(1, n_images + 1, dtype=np.int64)
    # Only the last position of a run of tied scores is a reachable cut.
    run_end = np.ones(sorted_true.shape, dtype=np.bool_)
    run_end[:, :-1] = sorted_scores[:, :-1] != sorted_scores[:, 1:]
    f1 = np.where(run_end, safe_divide(2 * tps, predicted + positives), -1.0)
    # argmax returns the first maximum, i.e. the highest score value: the documented tie rule.
    best_position = np.argmax(f1, axis=1)
    rows = np.arange(n_labels)
    has_positives = positives[:, 0] > 0
    thresholds[has_positives] = sorted_scores[rows, best_position][has_positives]
    best_f1[has_positives] = f1[rows, best_position][has_positives]
    return thresholds, best_f1


def optimal_thresholds(
    y_true: ArrayLike, scores: ArrayLike, fallback: float = DEFAULT_FALLBACK
) -> FloatArray:
    """Return the per-label threshold maximising F1 (see the module docstring for ties)."""
    thresholds, _ = best_f1_thresholds(y_true, scores, fallback=fallback)
    return thresholds


def optimal_global_threshold(
    y_true: ArrayLike, scores: ArrayLike, fallback: float = DEFAULT_FALLBACK
) -> float:
    """Return the one threshold for all labels ("set all") that maximises micro F1."""
    labels, values = as_pair(y_true, scores)
    threshold, _ = best_f1_thresholds(
        labels.reshape(-1, 1), values.reshape(-1, 1), fallback=fallback
    )
    return float(threshold[0])


def choose_thresholds(
    val: LabeledScores | None,
    train: LabeledScores | None,
    fallback: float = DEFAULT_FALLBACK,
) -> FloatArray:
    """Return per-label F1-optimal thresholds, from validation where possible.

    A label takes its validation optimum when the validation split has positives for it, else
    its training optimum when training has positives, else ``fallback``.
    """
    splits = [split for split in (val, train) if split is not None]
    if not splits:
        raise ValueError("choose_thresholds needs a validation or a training split")
    n_labels = {np.shape(split[1])[-1] for split in splits}
    if len(n_labels) != 1:
        raise ValueError("validation and training scores have different numbers of labels")
    chosen = np.full(n_labels.pop(), np.nan)
    for y_split, scores_split in splits:
        split_thresholds, split_f1 = best_f1_thresholds(y_split, scores_split, fallback=fallback)
        undecided = np.isnan(chosen) & ~np.isnan(split_f1)
        chosen[undecided] = split_thresholds[undecided]
    chosen[np.isnan(chosen)] = fallback
    return chosen
