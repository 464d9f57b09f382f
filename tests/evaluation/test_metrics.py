"""Per-label and overall metrics, checked against scikit-learn."""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np
import pytest
from sklearn import metrics as skm

from app.evaluation import (
    LabelMetrics,
    average_precision,
    binarize,
    per_label_metrics,
    roc_auc,
    summary_metrics,
)

SEEDS = [0, 1, 2, 3, 4]


def random_case(
    seed: int, n_images: int = 300, n_labels: int = 7, decimals: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """Correlated labels and scores, rounded so many scores tie; label 0 has no positives."""
    rng = np.random.default_rng(seed)
    y_true = (rng.random((n_images, n_labels)) < rng.uniform(0.05, 0.5, n_labels)).astype(int)
    y_true[:, 0] = 0
    scores = np.clip(0.35 * y_true + 0.65 * rng.random((n_images, n_labels)), 0.0, 1.0)
    return y_true, np.round(scores, decimals)


def sklearn_summary(y_true: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """The summary counting metrics as scikit-learn computes them (zero_division=0)."""
    result = {}
    for average in ("micro", "macro"):
        precision, recall, f1, _ = skm.precision_recall_fscore_support(
            y_true, predicted, average=average, zero_division=0
        )
        result[f"{average}_precision"] = precision
        result[f"{average}_recall"] = recall
        result[f"{average}_f1"] = f1
    result["jaccard"] = skm.jaccard_score(y_true, predicted, average="samples", zero_division=0)
    result["subset_accuracy"] = skm.accuracy_score(y_true, predicted)
    result["hamming_loss"] = skm.hamming_loss(y_true, predicted)
    return result


def assert_per_label_matches_sklearn(
    y_true: np.ndarray, scores: np.ndarray, thresholds: float | np.ndarray
) -> None:
    rows = per_label_metrics(y_true, scores, thresholds)
    predicted = (scores >= thresholds).astype(int)
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        y_true, predicted, average=None, zero_division=0
    )
    confusion = skm.multilabel_confusion_matrix(y_true, predicted)
    assert [row.index for row in rows] == list(range(y_true.shape[1]))
    for row in rows:
        j = row.index
        (tn, fp), (fn, tp) = confusion[j]
        assert (row.tn, row.fp, row.fn, row.tp) == (tn, fp, fn, tp)
        assert row.support == support[j]
        assert row.precision == pytest.approx(precision[j], abs=1e-12)
        assert row.recall == pytest.approx(recall[j], abs=1e-12)
        assert row.f1 == pytest.approx(f1[j], abs=1e-12)
        column_true, column_scores = y_true[:, j], scores[:, j]
        if column_true.any():
            expected_ap = skm.average_precision_score(column_true, column_scores)
            assert row.ap == pytest.approx(expected_ap, abs=1e-12)
        else:
            assert math.isnan(row.ap)
        if 0 < column_true.sum() < column_true.size:
            expected_auc = skm.roc_auc_score(column_true, column_scores)
            assert row.roc_auc == pytest.approx(expected_auc, abs=1e-12)
        else:
            assert math.isnan(row.roc_auc)


@pytest.mark.parametrize("seed", SEEDS)
def test_per_label_metrics_match_sklearn_with_one_threshold(seed: int) -> None:
    y_true, scores = random_case(seed)
    assert_per_label_matches_sklearn(y_true, scores, 0.5)


@pytest.mark.parametrize("seed", SEEDS)
def test_per_label_metrics_match_sklearn_with_per_label_thresholds(seed: int) -> None:
    y_true, scores = random_case(seed, decimals=6)
    thresholds = np.random.default_rng(seed + 100).uniform(0.2, 0.8, y_true.shape[1])
    assert_per_label_matches_sklearn(y_true, scores, thresholds)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
def test_summary_metrics_match_sklearn(seed: int, threshold: float) -> None:
    y_true, scores = random_case(seed)
    summary = summary_metrics(y_true, scores, threshold)
    predicted = (scores >= threshold).astype(int)

    for name, expected in sklearn_summary(y_true, predicted).items():
        assert summary[name] == pytest.approx(expected, abs=1e-12), name
    with_positives = y_true.any(axis=0)
    expected_map = skm.average_precision_score(
        y_true[:, with_positives], scores[:, with_positives], average="macro"
    )
    assert summary["map"] == pytest.approx(expected_map, abs=1e-12)
    assert summary["label_cardinality"] == pytest.approx(y_true.sum(axis=1).mean())
    assert summary["predicted_cardinality"] == pytest.approx(predicted.sum(axis=1).mean())


def test_summary_has_exactly_the_documented_keys() -> None:
    y_true, scores = random_case(0)
    assert set(summary_metrics(y_true, scores)) == {
        "map",
        "micro_precision",
        "micro_recall",
        "micro_f1",
        "macro_precision",
        "macro_recall",
        "macro_f1",
        "jaccard",
        "subset_accuracy",
        "hamming_loss",
        "label_cardinality",
        "predicted_cardinality",
    }


@pytest.mark.parametrize("seed", SEEDS)
def test_average_precision_matches_sklearn_with_heavy_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y_true = rng.random(500) < 0.3
    scores = np.round(0.3 * y_true + 0.7 * rng.random(500), 1)  # about 10 distinct values
    assert average_precision(y_true, scores) == pytest.approx(
        skm.average_precision_score(y_true, scores), abs=1e-12
    )
    assert roc_auc(y_true, scores) == pytest.approx(skm.roc_auc_score(y_true, scores), abs=1e-12)


def test_label_without_positives_has_undefined_ranking_and_zero_counts() -> None:
    y_true, scores = random_case(3)
    row = per_label_metrics(y_true, scores, 0.0)[0]
    assert row.support == 0
    assert row.tp == 0 and row.fn == 0 and row.fp == y_true.shape[0]
    assert (row.precision, row.recall, row.f1) == (0.0, 0.0, 0.0)
    assert math.isnan(row.ap) and math.isnan(row.roc_auc)
    assert math.isnan(average_precision(y_true[:, 0], scores[:, 0]))
    # mAP ignores the label instead of counting it as 0.
    aps = [r.ap for r in per_label_metrics(y_true, scores)[1:]]
    assert summary_metrics(y_true, scores)["map"] == pytest.approx(np.mean(aps))


def test_map_is_nan_when_no_label_has_positives() -> None:
    y_true = np.zeros((5, 3), dtype=int)
    scores = np.linspace(0, 1, 15).reshape(5, 3)
    assert math.isnan(summary_metrics(y_true, scores)["map"])


def test_no_predictions_gives_zero_precision_and_matches_sklearn() -> None:
    y_true, scores = random_case(1)
    summary = summary_metrics(y_true, scores, 1.01)
    predicted = np.zeros_like(y_true)
    for name, expected in sklearn_summary(y_true, predicted).items():
        assert summary[name] == pytest.approx(expected, abs=1e-12), name
    assert summary["micro_precision"] == 0.0
    assert summary["micro_recall"] == 0.0
    assert summary["predicted_cardinality"] == 0.0
    assert all(row.tp == 0 and row.fp == 0 for row in per_label_metrics(y_true, scores, 1.01))


def test_all_predicted_positive_gives_full_recall_and_matches_sklearn() -> None:
    y_true, scores = random_case(2)
    summary = summary_metrics(y_true, scores, 0.0)
    predicted = np.ones_like(y_true)
    for name, expected in sklearn_summary(y_true, predicted).items():
        assert summary[name] == pytest.approx(expected, abs=1e-12), name
    assert summary["micro_recall"] == 1.0
    assert summary["micro_precision"] == pytest.approx(y_true.mean())
    assert summary["predicted_cardinality"] == y_true.shape[1]
    assert_per_label_matches_sklearn(y_true, scores, 0.0)


def test_all_scores_tied_gives_prevalence_ap_and_half_auc() -> None:
    y_true = np.array([[1], [0], [0], [1], [0]])
    scores = np.full((5, 1), 0.4)
    row = per_label_metrics(y_true, scores)[0]
    assert row.ap == pytest.approx(0.4)  # one threshold: precision 2/5 at recall 1
    assert row.roc_auc == pytest.approx(0.5)
    assert row.ap == pytest.approx(skm.average_precision_score(y_true[:, 0], scores[:, 0]))


def test_tied_scores_count_as_predicted_at_equal_threshold() -> None:
    y_true = np.array([[1, 0], [0, 1]])
    scores = np.array([[0.5, 0.5], [0.5, 0.49]])
    rows = per_label_metrics(y_true, scores, 0.5)
    assert (rows[0].tp, rows[0].fp) == (1, 1)
    assert (rows[1].tp, rows[1].fp, rows[1].fn) == (0, 1, 1)


def test_single_image() -> None:
    y_true = np.array([[1, 0, 1]])
    scores = np.array([[0.9, 0.8, 0.2]])
    summary = summary_metrics(y_true, scores, 0.5)
    for name, expected in sklearn_summary(y_true, (scores >= 0.5).astype(int)).items():
        assert summary[name] == pytest.approx(expected), name
    rows = per_label_metrics(y_true, scores, 0.5)
    assert rows[0].ap == 1.0 and rows[2].ap == 1.0 and math.isnan(rows[1].ap)
    # One image has only one class per label, so ROC AUC is undefined everywhere.
    assert all(math.isnan(row.roc_auc) for row in rows)
    assert summary["map"] == 1.0
    assert summary["jaccard"] == pytest.approx(1 / 3)  # {0, 2} vs {0, 1}


def test_label_present_on_every_image_has_ap_one_and_no_auc() -> None:
    y_true = np.ones((4, 1), dtype=int)
    scores = np.array([[0.1], [0.9], [0.3], [0.3]])
    row = per_label_metrics(y_true, scores)[0]
    assert row.ap == 1.0
    assert math.isnan(row.roc_auc)


def test_zero_images_gives_zero_counts_and_nan_map() -> None:
    y_true = np.zeros((0, 3), dtype=int)
    scores = np.zeros((0, 3))
    summary = summary_metrics(y_true, scores)
    assert math.isnan(summary["map"])
    assert summary["micro_f1"] == 0.0 and summary["hamming_loss"] == 0.0
    assert [row.support for row in per_label_metrics(y_true, scores)] == [0, 0, 0]


def test_binarize_uses_greater_or_equal_and_per_label_thresholds() -> None:
    scores = np.array([[0.5, 0.2], [0.49, 0.3]])
    assert binarize(scores, 0.5).tolist() == [[True, False], [False, False]]
    assert binarize(scores, np.array([0.49, 0.3])).tolist() == [[True, False], [True, True]]
    assert binarize(scores, 0.5).dtype == np.bool_


@pytest.mark.parametrize(
    ("y_true", "scores", "message"),
    [
        (np.zeros((3, 2)), np.zeros((3, 3)), "same shape"),
        (np.full((2, 2), 2), np.zeros((2, 2)), "only 0 and 1"),
        (np.zeros((2, 2)), np.array([[0.1, np.nan], [0.2, 0.3]]), "finite"),
        (np.zeros(4), np.zeros(4), "2-D"),
    ],
)
def test_bad_input_is_rejected_with_a_clear_message(
    y_true: np.ndarray, scores: np.ndarray, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        summary_metrics(y_true, scores)


def test_thresholds_of_wrong_length_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        binarize(np.zeros((3, 2)), np.array([0.5, 0.5, 0.5]))


def test_label_metrics_is_frozen_and_serialises_nan_as_none() -> None:
    row = per_label_metrics(np.array([[0], [0]]), np.array([[0.2], [0.7]]))[0]
    assert isinstance(row, LabelMetrics)
    with pytest.raises(dataclasses.FrozenInstanceError):
        row.tp = 3  # type: ignore[misc]
    data = row.to_dict()
    assert data["ap"] is None and data["roc_auc"] is None
    assert data["fp"] == 1 and data["index"] == 0
    assert set(data) == {f.name for f in dataclasses.fields(LabelMetrics)}


def test_large_split_is_fast() -> None:
    rng = np.random.default_rng(0)
    y_true = rng.random((20_000, 80)) < 0.1
    scores = np.round(0.3 * y_true + 0.7 * rng.random((20_000, 80)), 3)
    best = math.inf
    for _ in range(2):
        start = time.perf_counter()
        summary_metrics(y_true, scores)
        per_label_metrics(y_true, scores)
        best = min(best, time.perf_counter() - start)
    # About 0.2 s on a laptop core; the bound leaves room for a busy CI machine.
    assert best < 1.5
