"""JSON-ready split reports."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.evaluation import (
    cooccurrence,
    curve_report,
    evaluate_split,
    json_ready,
    per_label_metrics,
    summary_metrics,
)


def split(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y_true = (rng.random((80, 4)) < 0.3).astype(int)
    y_true[:, 3] = 0  # no positives: AP and ROC AUC are NaN
    scores = np.round(np.clip(0.4 * y_true + 0.6 * rng.random((80, 4)), 0, 1), 3)
    return y_true, scores


def test_evaluate_split_reports_counts_metrics_and_cooccurrence() -> None:
    y_true, scores = split()
    thresholds = np.array([0.5, 0.4, 0.6, 0.5])
    report = evaluate_split(y_true, scores, thresholds)

    text = json.dumps(report, allow_nan=False)  # NaN would make this raise
    assert json.loads(text) == report
    assert report["counts"] == {
        "images": 80,
        "labels": 4,
        "positives": y_true.sum(axis=0).tolist(),
        "predicted": (scores >= thresholds).sum(axis=0).tolist(),
    }
    assert report["thresholds"] == thresholds.tolist()
    assert report["summary"] == pytest.approx(summary_metrics(y_true, scores, thresholds))
    assert report["per_label"] == [
        row.to_dict() for row in per_label_metrics(y_true, scores, thresholds)
    ]
    assert report["per_label"][3]["ap"] is None
    truth = cooccurrence(y_true)
    predicted = cooccurrence(scores >= thresholds)
    assert report["cooccurrence"]["truth"] == truth.tolist()
    assert report["cooccurrence"]["predicted"] == predicted.tolist()
    assert report["cooccurrence"]["difference"] == (predicted - truth).tolist()


def test_evaluate_split_turns_an_undefined_map_into_none() -> None:
    y_true = np.zeros((3, 2), dtype=int)
    report = evaluate_split(y_true, np.full((3, 2), 0.2), 0.5)
    assert report["summary"]["map"] is None
    assert report["thresholds"] == [0.5, 0.5]


def test_curve_report_has_curves_for_every_label() -> None:
    y_true, scores = split(1)
    report = curve_report(y_true, scores, max_points=20)
    json.dumps(report, allow_nan=False)
    assert [entry["index"] for entry in report["per_label"]] == [0, 1, 2, 3]
    assert all(len(entry["pr"]["recall"]) <= 20 for entry in report["per_label"])
    assert report["per_label"][3]["roc"]["tpr"][0] is None  # no positives: undefined rate
    assert len(report["micro_pr"]["precision"]) <= 20


def test_json_ready_converts_numpy_and_non_finite_values() -> None:
    value = {
        "a": np.float32(0.5),
        "b": np.array([[1, 2], [3, 4]], dtype=np.int64),
        "c": [float("nan"), float("inf"), np.nan],
        "d": (np.bool_(True), "text", None),
        1: np.int64(7),
    }
    assert json_ready(value) == {
        "a": 0.5,
        "b": [[1, 2], [3, 4]],
        "c": [None, None, None],
        "d": [True, "text", None],
        "1": 7,
    }
