"""Threshold sweeps and F1-optimal thresholds, checked by brute force."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn import metrics as skm

from app.evaluation import (
    DEFAULT_GRID,
    best_f1_thresholds,
    choose_thresholds,
    optimal_global_threshold,
    optimal_thresholds,
    per_label_metrics,
    summary_metrics,
    threshold_sweep,
)

SEEDS = [0, 1, 2, 3, 4]


def random_case(
    seed: int, n_images: int = 150, n_labels: int = 5, decimals: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """Correlated labels and scores with ties; label 0 has no positives."""
    rng = np.random.default_rng(seed)
    y_true = (rng.random((n_images, n_labels)) < rng.uniform(0.05, 0.5, n_labels)).astype(int)
    y_true[:, 0] = 0
    scores = np.round(
        np.clip(0.3 * y_true + 0.7 * rng.random((n_images, n_labels)), 0, 1), decimals
    )
    return y_true, scores


def f1_at(y_true: np.ndarray, scores: np.ndarray, threshold: float) -> float:
    """F1 of ``scores >= threshold`` pooled over all entries, counted directly."""
    predicted = scores >= threshold
    tp = np.count_nonzero(predicted & (y_true == 1))
    denominator = np.count_nonzero(predicted) + np.count_nonzero(y_true)
    return 2 * tp / denominator if denominator else 0.0


def brute_force_f1(y_true: np.ndarray, scores: np.ndarray) -> dict[float, float]:
    """F1 at every distinct score value, one threshold at a time."""
    return {float(value): f1_at(y_true, scores, value) for value in np.unique(scores)}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("decimals", [1, 2, 6])
def test_optimal_thresholds_reach_the_brute_force_maximum(seed: int, decimals: int) -> None:
    y_true, scores = random_case(seed, decimals=decimals)
    thresholds, best_f1 = best_f1_thresholds(y_true, scores)
    assert np.array_equal(thresholds, optimal_thresholds(y_true, scores))
    for j in range(1, y_true.shape[1]):
        f1_by_threshold = brute_force_f1(y_true[:, j], scores[:, j])
        best = max(f1_by_threshold.values())
        chosen = float(thresholds[j])
        assert chosen in f1_by_threshold  # one of the label's own score values
        achieved = skm.f1_score(y_true[:, j], scores[:, j] >= chosen)
        assert achieved == pytest.approx(best, abs=1e-12)
        assert best_f1[j] == pytest.approx(best, abs=1e-12)
        # Ties go to the highest threshold reaching the maximum.
        maximisers = [t for t, f1 in f1_by_threshold.items() if math.isclose(f1, best)]
        assert chosen == max(maximisers)


def test_equal_f1_picks_the_higher_threshold() -> None:
    # Cutting at 0.9 gives tp 1 of 1 predicted, at 0.6 tp 2 of 4: both F1 = 2/3.
    y_true = np.array([[1], [0], [0], [1]])
    scores = np.array([[0.9], [0.8], [0.7], [0.6]])
    thresholds, best_f1 = best_f1_thresholds(y_true, scores)
    assert thresholds[0] == 0.9
    assert best_f1[0] == pytest.approx(2 / 3)


def test_label_without_positives_gets_the_fallback() -> None:
    y_true, scores = random_case(0)
    thresholds, best_f1 = best_f1_thresholds(y_true, scores)
    assert thresholds[0] == 0.5 and math.isnan(best_f1[0])
    assert optimal_thresholds(y_true, scores, fallback=0.8)[0] == 0.8
    assert optimal_thresholds(np.zeros((0, 3)), np.zeros((0, 3))).tolist() == [0.5] * 3


def test_tied_scores_are_one_candidate() -> None:
    # Every score tied: the only cut predicts all images.
    y_true = np.array([[1], [0], [0]])
    scores = np.full((3, 1), 0.7)
    thresholds, best_f1 = best_f1_thresholds(y_true, scores)
    assert thresholds[0] == 0.7
    assert best_f1[0] == pytest.approx(0.5)


@pytest.mark.parametrize("seed", SEEDS)
def test_optimal_global_threshold_maximises_micro_f1(seed: int) -> None:
    y_true, scores = random_case(seed)
    chosen = optimal_global_threshold(y_true, scores)
    micro_f1 = brute_force_f1(y_true, scores)
    best = max(micro_f1.values())
    assert micro_f1[chosen] == pytest.approx(best, abs=1e-12)
    achieved = skm.f1_score(y_true, scores >= chosen, average="micro")
    assert achieved == pytest.approx(best, abs=1e-12)
    assert summary_metrics(y_true, scores, chosen)["micro_f1"] == pytest.approx(best, abs=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_sweep_matches_metrics_at_each_grid_threshold(seed: int) -> None:
    # Scores on a 0.01 grid, so many land exactly on a sweep threshold (>= must count them).
    y_true, scores = random_case(seed, decimals=2)
    sweep = threshold_sweep(y_true, scores)
    assert np.array_equal(sweep.thresholds, DEFAULT_GRID)
    assert sweep.label_f1.shape == (y_true.shape[1], DEFAULT_GRID.size)
    for g in range(0, DEFAULT_GRID.size, 7):
        threshold = float(sweep.thresholds[g])
        summary = summary_metrics(y_true, scores, threshold)
        assert sweep.precision[g] == pytest.approx(summary["micro_precision"], abs=1e-12)
        assert sweep.recall[g] == pytest.approx(summary["micro_recall"], abs=1e-12)
        assert sweep.f1[g] == pytest.approx(summary["micro_f1"], abs=1e-12)
        assert sweep.jaccard[g] == pytest.approx(summary["jaccard"], abs=1e-12)
        for row in per_label_metrics(y_true, scores, threshold):
            assert sweep.label_precision[row.index, g] == pytest.approx(row.precision, abs=1e-12)
            assert sweep.label_recall[row.index, g] == pytest.approx(row.recall, abs=1e-12)
            assert sweep.label_f1[row.index, g] == pytest.approx(row.f1, abs=1e-12)


def test_sweep_grid_is_sorted_and_deduplicated() -> None:
    y_true, scores = random_case(1)
    sweep = threshold_sweep(y_true, scores, grid=[0.7, 0.2, 0.7, 0.5])
    assert sweep.thresholds.tolist() == [0.2, 0.5, 0.7]
    assert sweep.f1[1] == pytest.approx(summary_metrics(y_true, scores, 0.5)["micro_f1"])
    # Raising the threshold can only lower recall.
    assert (np.diff(sweep.recall) <= 0).all()


def test_sweep_rejects_an_empty_grid() -> None:
    y_true, scores = random_case(1)
    with pytest.raises(ValueError, match="grid"):
        threshold_sweep(y_true, scores, grid=[])


def test_sweep_to_dict_is_json_ready() -> None:
    y_true, scores = random_case(2)
    data = threshold_sweep(y_true, scores, grid=[0.25, 0.5]).to_dict()
    json.dumps(data, allow_nan=False)
    assert data["thresholds"] == [0.25, 0.5]
    assert len(data["per_label"]["f1"]) == y_true.shape[1]
    assert data["per_label"]["recall"][0] == [0.0, 0.0]  # no positives: zero_division=0


def test_choose_thresholds_prefers_validation() -> None:
    train = random_case(1)
    val = random_case(2)
    chosen = choose_thresholds(val=val, train=train)
    expected = optimal_thresholds(*val)
    assert np.array_equal(chosen[1:], expected[1:])


def test_choose_thresholds_falls_back_to_train_without_validation() -> None:
    train = random_case(1)
    chosen = choose_thresholds(val=None, train=train)
    assert np.array_equal(chosen, optimal_thresholds(*train))


def test_choose_thresholds_falls_back_per_label() -> None:
    val_true, val_scores = random_case(2)
    train_true, train_scores = random_case(1)
    val_true[:, 2] = 0  # label 2 has no validation positives: take the training optimum
    train_true[:, 0] = 0  # label 0 has positives nowhere: take the fallback
    chosen = choose_thresholds(
        val=(val_true, val_scores), train=(train_true, train_scores), fallback=0.42
    )
    assert chosen[0] == 0.42
    assert chosen[2] == optimal_thresholds(train_true, train_scores)[2]
    assert chosen[1] == optimal_thresholds(val_true, val_scores)[1]


def test_choose_thresholds_rejects_bad_splits() -> None:
    with pytest.raises(ValueError, match="needs a validation or a training split"):
        choose_thresholds(val=None, train=None)
    with pytest.raises(ValueError, match="different numbers of labels"):
        choose_thresholds(val=random_case(0, n_labels=3), train=random_case(0, n_labels=4))
