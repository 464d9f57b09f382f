"""Multi-label evaluation: metrics, curves, thresholds and co-occurrence (numpy only).

Used by the trainer (validation metrics), the evaluation service (stored reports) and the api
(threshold changes recomputed from a stored score matrix).
"""

from app.evaluation.cooccurrence import (
    conditional_cooccurrence,
    cooccurrence,
    cooccurrence_matrices,
    predicted_cooccurrence,
)
from app.evaluation.curves import (
    downsample_curve,
    micro_pr_curve,
    micro_pr_curve_points,
    pr_curve,
    pr_curve_points,
    roc_curve,
    roc_curve_points,
)
from app.evaluation.jsonable import json_ready
from app.evaluation.metrics import (
    LabelMetrics,
    average_precision,
    binarize,
    per_label_metrics,
    roc_auc,
    summary_metrics,
)
from app.evaluation.report import curve_report, evaluate_split
from app.evaluation.thresholds import (
    DEFAULT_GRID,
    ThresholdSweep,
    best_f1_thresholds,
    choose_thresholds,
    optimal_global_threshold,
    optimal_thresholds,
    threshold_sweep,
)

__all__ = [
    "DEFAULT_GRID",
    "LabelMetrics",
    "ThresholdSweep",
    "average_precision",
    "best_f1_thresholds",
    "binarize",
    "choose_thresholds",
    "conditional_cooccurrence",
    "cooccurrence",
    "cooccurrence_matrices",
    "curve_report",
    "downsample_curve",
    "evaluate_split",
    "json_ready",
    "micro_pr_curve",
    "micro_pr_curve_points",
    "optimal_global_threshold",
    "optimal_thresholds",
    "per_label_metrics",
    "pr_curve",
    "pr_curve_points",
    "predicted_cooccurrence",
    "roc_auc",
    "roc_curve",
    "roc_curve_points",
    "summary_metrics",
    "threshold_sweep",
]
