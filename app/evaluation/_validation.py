"""Input checks shared by the evaluation modules, with messages that name the problem."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

ArrayLike = npt.ArrayLike
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]


def as_label_matrix(labels: ArrayLike, name: str = "y_true") -> BoolArray:
    """Return a 2-D bool matrix from 0/1 (bool or int) input, or raise ValueError."""
    array = np.asarray(labels)
    if array.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_images, n_labels), got shape {array.shape}")
    if array.dtype == np.bool_:
        return array
    if not ((array == 0) | (array == 1)).all():
        raise ValueError(f"{name} must contain only 0 and 1")
    return array.astype(np.bool_)


def as_score_matrix(scores: ArrayLike, name: str = "scores") -> FloatArray:
    """Return a 2-D float64 matrix of finite scores, or raise ValueError."""
    array = np.asarray(scores, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_images, n_labels), got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} must be finite (found NaN or infinity)")
    return array


def as_pair(y_true: ArrayLike, scores: ArrayLike) -> tuple[BoolArray, FloatArray]:
    """Validate a (labels, scores) pair of matrices with the same shape."""
    labels = as_label_matrix(y_true)
    values = as_score_matrix(scores)
    if labels.shape != values.shape:
        raise ValueError(
            f"y_true and scores must have the same shape, got {labels.shape} and {values.shape}"
        )
    return labels, values


def as_column_pair(y_true_col: ArrayLike, scores_col: ArrayLike) -> tuple[BoolArray, FloatArray]:
    """Validate one label's (labels, scores) vectors and return them as (n, 1) matrices."""
    labels = np.asarray(y_true_col)
    values = np.asarray(scores_col)
    if labels.ndim != 1 or values.ndim != 1:
        raise ValueError(
            f"y_true_col and scores_col must be 1-D, got shapes {labels.shape} and {values.shape}"
        )
    return as_pair(labels.reshape(-1, 1), values.reshape(-1, 1))


def as_thresholds(thresholds: ArrayLike, n_labels: int) -> FloatArray:
    """Return thresholds as an (n_labels,) float array from a scalar or a per-label array."""
    array = np.asarray(thresholds, dtype=np.float64)
    if array.ndim == 0:
        return np.full(n_labels, float(array))
    if array.shape != (n_labels,):
        raise ValueError(
            f"thresholds must be a number or have shape ({n_labels},), got {array.shape}"
        )
    if np.isnan(array).any():
        raise ValueError("thresholds must not contain NaN")
    return array
