"""PR and ROC curves, checked point for point against scikit-learn, and their thinning."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from sklearn import metrics as skm

from app.evaluation import (
    average_precision,
    downsample_curve,
    micro_pr_curve,
    micro_pr_curve_points,
    pr_curve,
    pr_curve_points,
    roc_curve,
    roc_curve_points,
)

SEEDS = [0, 1, 2, 3, 4]


def random_column(seed: int, size: int = 400, decimals: int = 2) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y_true = (rng.random(size) < 0.25).astype(int)
    scores = np.round(np.clip(0.3 * y_true + 0.7 * rng.random(size), 0, 1), decimals)
    return y_true, scores


def assert_same_arrays(actual: tuple[np.ndarray, ...], expected: tuple[np.ndarray, ...]) -> None:
    assert len(actual) == len(expected)
    for got, want in zip(actual, expected, strict=True):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12, equal_nan=True)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("decimals", [1, 2, 8])
def test_pr_curve_matches_sklearn(seed: int, decimals: int) -> None:
    y_true, scores = random_column(seed, decimals=decimals)
    assert_same_arrays(pr_curve(y_true, scores), skm.precision_recall_curve(y_true, scores))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("decimals", [1, 2, 8])
def test_roc_curve_matches_sklearn(seed: int, decimals: int) -> None:
    y_true, scores = random_column(seed, decimals=decimals)
    fpr, tpr, thresholds = roc_curve(y_true, scores)
    assert thresholds[0] == np.inf
    assert_same_arrays((fpr, tpr, thresholds), skm.roc_curve(y_true, scores))


def test_curves_without_positives_match_sklearn() -> None:
    y_true = np.zeros(6, dtype=int)
    scores = np.array([0.1, 0.5, 0.5, 0.9, 0.3, 0.2])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected_pr = skm.precision_recall_curve(y_true, scores)
        expected_roc = skm.roc_curve(y_true, scores)
    assert_same_arrays(pr_curve(y_true, scores), expected_pr)
    fpr, tpr, thresholds = roc_curve(y_true, scores)
    assert np.isnan(tpr).all()
    assert_same_arrays((fpr, tpr, thresholds), expected_roc)


def test_curves_of_a_single_image_and_of_all_tied_scores() -> None:
    assert_same_arrays(pr_curve([1], [0.3]), skm.precision_recall_curve([1], [0.3]))
    y_true, scores = [1, 0, 1, 0], [0.6, 0.6, 0.6, 0.6]
    assert_same_arrays(pr_curve(y_true, scores), skm.precision_recall_curve(y_true, scores))
    assert_same_arrays(roc_curve(y_true, scores), skm.roc_curve(y_true, scores))


@pytest.mark.parametrize("seed", SEEDS)
def test_micro_pr_curve_pools_every_image_and_label(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y_true = (rng.random((120, 5)) < 0.3).astype(int)
    scores = np.round(0.3 * y_true + 0.7 * rng.random((120, 5)), 2)
    expected = skm.precision_recall_curve(y_true.ravel(), scores.ravel())
    assert_same_arrays(micro_pr_curve(y_true, scores), expected)


@pytest.mark.parametrize("seed", SEEDS)
def test_pr_curve_step_integral_is_average_precision(seed: int) -> None:
    y_true, scores = random_column(seed)
    precision, recall, _ = pr_curve(y_true, scores)
    integral = -np.sum(np.diff(recall) * precision[:-1])
    assert average_precision(y_true, scores) == pytest.approx(integral, abs=1e-12)


def test_curve_needs_an_image() -> None:
    with pytest.raises(ValueError, match="at least one image"):
        pr_curve([], [])


def test_downsample_keeps_short_curves_whole() -> None:
    x = np.array([0.0, 0.5, 1.0])
    y = np.array([1.0, 0.7, 0.2])
    kept_x, kept_y = downsample_curve(x, y, max_points=5)
    assert kept_x.tolist() == x.tolist() and kept_y.tolist() == y.tolist()


@pytest.mark.parametrize("max_points", [2, 10, 57])
def test_downsample_keeps_ends_and_aligned_points(max_points: int) -> None:
    y_true, scores = random_column(7, size=5000, decimals=6)
    fpr, tpr, thresholds = roc_curve(y_true, scores)
    assert fpr.size > max_points
    kept_fpr, kept_tpr, kept_thresholds = downsample_curve(
        fpr, tpr, thresholds, max_points=max_points
    )
    assert 2 <= kept_fpr.size <= max_points
    assert (kept_fpr[0], kept_tpr[0]) == (fpr[0], tpr[0])
    assert (kept_fpr[-1], kept_tpr[-1]) == (fpr[-1], tpr[-1])
    # Every kept point is an original point, rows kept together, in the original order.
    positions = [int(np.flatnonzero(thresholds == value)[0]) for value in kept_thresholds]
    assert positions == sorted(positions)
    assert np.array_equal(fpr[positions], kept_fpr)
    assert np.array_equal(tpr[positions], kept_tpr)


def test_downsample_spreads_points_along_the_curve() -> None:
    # A curve with 900 points crowded on a short stretch and 100 on a long one: thinning by
    # path length must not spend its budget on the crowded part.
    x = np.concatenate([np.linspace(0, 0.01, 900), np.linspace(0.02, 1, 100)])
    y = np.zeros_like(x)
    kept_x, _ = downsample_curve(x, y, max_points=50)
    assert (kept_x > 0.5).sum() >= 20


def test_downsample_falls_back_to_index_steps_with_nan() -> None:
    x = np.linspace(0, 1, 100)
    y = np.full(100, np.nan)
    kept_x, kept_y = downsample_curve(x, y, max_points=11)
    assert kept_x.size == 11 and np.isnan(kept_y).all()
    np.testing.assert_allclose(
        kept_x, np.linspace(0, 1, 100)[np.linspace(0, 99, 11).round().astype(int)]
    )


def test_downsample_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        downsample_curve([0, 1], [0, 1], max_points=1)
    with pytest.raises(ValueError, match="equal length"):
        downsample_curve([0, 1, 2], [0, 1])


def test_curve_points_are_json_ready_and_aligned() -> None:
    y_true, scores = random_column(3, size=3000, decimals=5)
    pr = pr_curve_points(y_true, scores, max_points=40)
    roc = roc_curve_points(y_true, scores, max_points=40)
    json.dumps({"pr": pr, "roc": roc}, allow_nan=False)
    assert len(pr["precision"]) == len(pr["recall"]) == len(pr["thresholds"]) <= 40
    assert pr["thresholds"][-1] is None  # the (recall 0, precision 1) end has no threshold
    assert (pr["recall"][-1], pr["precision"][-1]) == (0.0, 1.0)
    assert roc["thresholds"][0] is None  # sklearn's leading inf threshold
    assert (roc["fpr"][0], roc["tpr"][0], roc["fpr"][-1], roc["tpr"][-1]) == (0, 0, 1, 1)


def test_micro_curve_points_match_the_micro_curve_ends() -> None:
    rng = np.random.default_rng(0)
    y_true = rng.random((200, 4)) < 0.3
    scores = rng.random((200, 4))
    points = micro_pr_curve_points(y_true, scores, max_points=30)
    precision, recall, thresholds = micro_pr_curve(y_true, scores)
    assert len(points["recall"]) <= 30
    assert points["recall"][0] == recall[0] and points["precision"][0] == precision[0]
    assert points["thresholds"][0] == thresholds[0]
