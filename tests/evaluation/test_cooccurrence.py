"""Co-occurrence matrices, checked against a brute-force double loop."""

from __future__ import annotations

import numpy as np
import pytest

from app.evaluation import (
    binarize,
    conditional_cooccurrence,
    cooccurrence,
    cooccurrence_matrices,
    predicted_cooccurrence,
)

SEEDS = [0, 1, 2, 3, 4]


def brute_force_cooccurrence(labels: np.ndarray) -> np.ndarray:
    n_images, n_labels = labels.shape
    counts = np.zeros((n_labels, n_labels), dtype=np.int64)
    for i in range(n_labels):
        for j in range(n_labels):
            counts[i, j] = sum(1 for row in range(n_images) if labels[row, i] and labels[row, j])
    return counts


def random_labels(seed: int, n_images: int = 60, n_labels: int = 6) -> np.ndarray:
    rng = np.random.default_rng(seed)
    labels = (rng.random((n_images, n_labels)) < rng.uniform(0.1, 0.6, n_labels)).astype(int)
    labels[:, -1] = 0  # a label nobody has
    return labels


@pytest.mark.parametrize("seed", SEEDS)
def test_cooccurrence_matches_brute_force(seed: int) -> None:
    labels = random_labels(seed)
    counts = cooccurrence(labels)
    assert counts.dtype == np.int64
    assert np.array_equal(counts, brute_force_cooccurrence(labels))
    assert np.array_equal(np.diag(counts), labels.sum(axis=0))
    assert np.array_equal(counts, counts.T)


def test_cooccurrence_accepts_bool_and_rejects_non_binary() -> None:
    labels = random_labels(0)
    assert np.array_equal(cooccurrence(labels.astype(bool)), cooccurrence(labels))
    with pytest.raises(ValueError, match="only 0 and 1"):
        cooccurrence(labels * 2)


def test_cooccurrence_of_no_images_is_zero() -> None:
    counts = cooccurrence(np.zeros((0, 3), dtype=int))
    assert counts.shape == (3, 3) and not counts.any()


@pytest.mark.parametrize("seed", SEEDS)
def test_predicted_cooccurrence_counts_predictions_at_thresholds(seed: int) -> None:
    rng = np.random.default_rng(seed)
    scores = np.round(rng.random((50, 4)), 2)
    thresholds = np.array([0.5, 0.3, 0.9, 0.5])
    expected = brute_force_cooccurrence(scores >= thresholds)
    assert np.array_equal(predicted_cooccurrence(scores, thresholds), expected)
    assert np.array_equal(cooccurrence(binarize(scores, thresholds)), expected)


def test_cooccurrence_matrices_difference_is_predicted_minus_truth() -> None:
    labels = random_labels(4, n_labels=4)
    scores = np.clip(0.4 * labels + 0.6 * np.random.default_rng(4).random(labels.shape), 0, 1)
    matrices = cooccurrence_matrices(labels, scores, 0.5)
    assert np.array_equal(matrices["truth"], brute_force_cooccurrence(labels))
    assert np.array_equal(matrices["predicted"], brute_force_cooccurrence(scores >= 0.5))
    assert np.array_equal(matrices["difference"], matrices["predicted"] - matrices["truth"])


def test_conditional_cooccurrence_is_row_normalised() -> None:
    labels = random_labels(2)
    counts = cooccurrence(labels)
    conditional = conditional_cooccurrence(counts)
    n_labels = labels.shape[1]
    for i in range(n_labels):
        with_i = labels[labels[:, i] == 1]
        for j in range(n_labels):
            if len(with_i) == 0:
                assert np.isnan(conditional[i, j])
            else:
                assert conditional[i, j] == pytest.approx(with_i[:, j].mean())
    assert np.allclose(np.diag(conditional)[:-1], 1.0)
    assert np.isnan(conditional[-1]).all()  # the label nobody has


def test_conditional_cooccurrence_needs_a_square_matrix() -> None:
    with pytest.raises(ValueError, match="square"):
        conditional_cooccurrence(np.zeros((2, 3)))
