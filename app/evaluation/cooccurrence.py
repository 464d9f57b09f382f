"""Label co-occurrence matrices: how often two tags appear on the same image.

``C[i, j]`` counts images carrying both label i and label j; the diagonal counts images with
label i. The same matrix is built from ground truth and from predictions at chosen thresholds.
"""

from __future__ import annotations

import numpy as np

from app.evaluation._validation import (
    ArrayLike,
    FloatArray,
    IntArray,
    as_label_matrix,
    as_pair,
    as_thresholds,
)


def cooccurrence(labels: ArrayLike) -> IntArray:
    """Return the (k, k) int64 matrix of images having both label i and label j."""
    matrix = as_label_matrix(labels, name="labels")
    # A float64 matmul goes through BLAS (an int64 one does not) and is exact for counts below
    # 2**53, far beyond any number of images.
    as_float = matrix.astype(np.float64)
    return np.rint(as_float.T @ as_float).astype(np.int64)


def predicted_cooccurrence(scores: ArrayLike, thresholds: ArrayLike) -> IntArray:
    """Return the co-occurrence of predictions ``scores >= thresholds``."""
    values = np.asarray(scores, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"scores must be 2-D (n_images, n_labels), got shape {values.shape}")
    return cooccurrence(values >= as_thresholds(thresholds, values.shape[1]))


def cooccurrence_matrices(
    y_true: ArrayLike, scores: ArrayLike, thresholds: ArrayLike
) -> dict[str, IntArray]:
    """Return ``truth``, ``predicted`` and ``difference`` (predicted minus truth) matrices."""
    labels, values = as_pair(y_true, scores)
    truth = cooccurrence(labels)
    predicted = cooccurrence(values >= as_thresholds(thresholds, values.shape[1]))
    return {"truth": truth, "predicted": predicted, "difference": predicted - truth}


def conditional_cooccurrence(matrix: ArrayLike) -> FloatArray:
    """Row-normalise a co-occurrence matrix into P(column label | row label).

    A row whose label never occurs has no conditional probability and is NaN.
    """
    counts = np.asarray(matrix, dtype=np.float64)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
        raise ValueError(f"a co-occurrence matrix must be square, got shape {counts.shape}")
    diagonal = np.diag(counts)[:, None]
    out = np.full(counts.shape, np.nan)
    np.divide(counts, diagonal, out=out, where=diagonal != 0)
    return out
