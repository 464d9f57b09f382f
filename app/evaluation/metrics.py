"""Multi-label classification metrics, defined as scikit-learn defines them.

Conventions: ``y_true`` is an (n_images, n_labels) 0/1 matrix, ``scores`` an (n_images,
n_labels) matrix of probabilities, ``thresholds`` a number or an (n_labels,) array; an image
predicts a label when ``score >= threshold``. Counting metrics use sklearn's ``zero_division=0``
rule; ranking metrics (AP, ROC AUC) are NaN where undefined (no positives, or no negatives for
ROC AUC).

Ranking metrics are computed for all labels at once from one column-wise sort of the score matrix,
so 20,000 images x 80 labels take a fraction of a second.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from app.evaluation._validation import (
    ArrayLike,
    BoolArray,
    FloatArray,
    IntArray,
    as_column_pair,
    as_pair,
    as_score_matrix,
    as_thresholds,
)


@dataclass(frozen=True)
class LabelMetrics:
    """Metrics of one label (column) at its threshold."""

    index: int
    support: int
    tp: int
    fp: int
    fn: int
    tn: int
    precision: float
    recall: float
    f1: float
    ap: float
    roc_auc: float

    def to_dict(self) -> dict[str, int | float | None]:
        """Return a JSON-ready dict (NaN becomes None)."""
        return {
            key: None if isinstance(value, float) and math.isnan(value) else value
            for key, value in asdict(self).items()
        }


def binarize(scores: ArrayLike, thresholds: ArrayLike) -> BoolArray:
    """Return the bool prediction matrix ``scores >= thresholds``."""
    values = as_score_matrix(scores)
    return values >= as_thresholds(thresholds, values.shape[1])


def safe_divide(numerator: ArrayLike, denominator: ArrayLike) -> FloatArray:
    """Element-wise ``numerator / denominator`` with 0.0 where the denominator is 0."""
    num = np.asarray(numerator, dtype=np.float64)
    den = np.asarray(denominator, dtype=np.float64)
    out = np.zeros(np.broadcast(num, den).shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


def ranking_metrics(y_true: BoolArray, scores: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Return per-label (AP, ROC AUC) arrays for validated matrices; NaN where undefined."""
    n_images, n_labels = scores.shape
    ap = np.full(n_labels, np.nan)
    auc = np.full(n_labels, np.nan)
    if n_images == 0:
        return ap, auc
    # One row per label, contiguous, so the sort and scans run along memory. The order inside
    # a run of tied scores does not matter (counts are read where a run ends), so the default
    # unstable sort is fine.
    negated = np.ascontiguousarray(-scores.T)
    order = np.argsort(negated, axis=1)
    sorted_scores = np.take_along_axis(negated, order, axis=1)
    sorted_true = np.take_along_axis(np.ascontiguousarray(y_true.T), order, axis=1)
    tps = np.cumsum(sorted_true, axis=1, dtype=np.int64)
    positives = tps[:, -1]
    negatives = n_images - positives

    # The points of the curves are where a run of equal scores ends: thresholding at that score
    # predicts everything up to there. Flattened row by row, so labels stay contiguous.
    run_end = np.ones(sorted_true.shape, dtype=np.bool_)
    run_end[:, :-1] = sorted_scores[:, :-1] != sorted_scores[:, 1:]
    label_at, position = np.nonzero(run_end)
    tp_at = tps[run_end]
    fp_at = (position + 1) - tp_at
    first_point = np.ones(label_at.size, dtype=np.bool_)
    first_point[1:] = label_at[1:] != label_at[:-1]
    tp_before = np.where(first_point, 0, np.roll(tp_at, 1))
    fp_before = np.where(first_point, 0, np.roll(fp_at, 1))

    # AP: sum over points of (recall step) x precision, recall steps taken in units of 1/P.
    ap_sum = np.bincount(
        label_at, weights=(tp_at - tp_before) * tp_at / (position + 1), minlength=n_labels
    )
    # ROC AUC: trapezoids, in units of 1/(P x N) with the 1/2 applied at the end.
    auc_sum = np.bincount(
        label_at, weights=(fp_at - fp_before) * (tp_at + tp_before), minlength=n_labels
    )
    has_positives = positives > 0
    ap[has_positives] = ap_sum[has_positives] / positives[has_positives]
    defined = has_positives & (negatives > 0)
    auc[defined] = auc_sum[defined] / (2.0 * positives[defined] * negatives[defined])
    return ap, auc


def average_precision(y_true_col: ArrayLike, scores_col: ArrayLike) -> float:
    """AP of one label as sklearn's ``average_precision_score``; NaN without positives."""
    labels, values = as_column_pair(y_true_col, scores_col)
    ap, _ = ranking_metrics(labels, values)
    return float(ap[0])


def roc_auc(y_true_col: ArrayLike, scores_col: ArrayLike) -> float:
    """ROC AUC of one label as sklearn's ``roc_auc_score``; NaN unless both classes occur."""
    labels, values = as_column_pair(y_true_col, scores_col)
    _, auc = ranking_metrics(labels, values)
    return float(auc[0])


def confusion_counts(
    y_true: BoolArray, predicted: BoolArray
) -> tuple[IntArray, IntArray, IntArray, IntArray]:
    """Return per-label (tp, fp, fn, tn) count arrays for validated bool matrices."""
    tp = np.count_nonzero(y_true & predicted, axis=0).astype(np.int64)
    support = np.count_nonzero(y_true, axis=0).astype(np.int64)
    predicted_count = np.count_nonzero(predicted, axis=0).astype(np.int64)
    fp = predicted_count - tp
    fn = support - tp
    tn = y_true.shape[0] - tp - fp - fn
    return tp, fp, fn, tn


def per_label_metrics(
    y_true: ArrayLike, scores: ArrayLike, thresholds: ArrayLike = 0.5
) -> list[LabelMetrics]:
    """Return one ``LabelMetrics`` per label (column), in column order."""
    labels, values = as_pair(y_true, scores)
    predicted = values >= as_thresholds(thresholds, values.shape[1])
    tp, fp, fn, tn = confusion_counts(labels, predicted)
    precision = safe_divide(tp, tp + fp)
    recall = safe_divide(tp, tp + fn)
    f1 = safe_divide(2 * tp, 2 * tp + fp + fn)
    ap, auc = ranking_metrics(labels, values)
    return [
        LabelMetrics(
            index=index,
            support=int(tp[index] + fn[index]),
            tp=int(tp[index]),
            fp=int(fp[index]),
            fn=int(fn[index]),
            tn=int(tn[index]),
            precision=float(precision[index]),
            recall=float(recall[index]),
            f1=float(f1[index]),
            ap=float(ap[index]),
            roc_auc=float(auc[index]),
        )
        for index in range(values.shape[1])
    ]


def summary_metrics(
    y_true: ArrayLike, scores: ArrayLike, thresholds: ArrayLike = 0.5
) -> dict[str, float]:
    """Return the overall metrics of a split (see the module docstring for the rules).

    ``map`` averages AP over the labels that have positives and is NaN when none has any.
    """
    labels, values = as_pair(y_true, scores)
    predicted = values >= as_thresholds(thresholds, values.shape[1])
    tp, fp, fn, _ = confusion_counts(labels, predicted)
    ap, _ = ranking_metrics(labels, values)
    defined_ap = ap[~np.isnan(ap)]

    tp_all, fp_all, fn_all = int(tp.sum()), int(fp.sum()), int(fn.sum())
    true_per_image = np.count_nonzero(labels, axis=1)
    predicted_per_image = np.count_nonzero(predicted, axis=1)
    intersection = np.count_nonzero(labels & predicted, axis=1)
    union = true_per_image + predicted_per_image - intersection
    mismatches = np.count_nonzero(labels != predicted)

    def mean(array: FloatArray | IntArray) -> float:
        return float(array.mean()) if array.size else 0.0

    return {
        "map": float(defined_ap.mean()) if defined_ap.size else math.nan,
        "micro_precision": float(safe_divide(tp_all, tp_all + fp_all)),
        "micro_recall": float(safe_divide(tp_all, tp_all + fn_all)),
        "micro_f1": float(safe_divide(2 * tp_all, 2 * tp_all + fp_all + fn_all)),
        "macro_precision": mean(safe_divide(tp, tp + fp)),
        "macro_recall": mean(safe_divide(tp, tp + fn)),
        "macro_f1": mean(safe_divide(2 * tp, 2 * tp + fp + fn)),
        "jaccard": mean(safe_divide(intersection, union)),
        "subset_accuracy": mean(np.all(labels == predicted, axis=1).astype(np.float64)),
        "hamming_loss": float(mismatches / values.size) if values.size else 0.0,
        "label_cardinality": mean(true_per_image),
        "predicted_cardinality": mean(predicted_per_image),
    }
