"""Evaluations of a run's checkpoints: stored score matrices, reports at chosen thresholds,
saved thresholds, best-vs-last comparison and scoring of a checkpoint that has no scores yet.

Score matrices (npz: ``asset_ids`` (n,), ``tag_ids`` (k,), ``scores`` float32 (n, k), ``truth``
uint8 (n, k)) are written by the trainer for the best checkpoint. Thresholds live on the
checkpoint's evaluation rows as ``{"default": 0.5, "mode": "optimized" | "custom",
"values": {"<tag id>": t}}``; without a mode they are the F1-optimised ones.

Prediction rule, here and in the browser: ``float32(score) >= float32(threshold)``. Scores are
float32, so thresholds are rounded to float32 too, and a threshold typed in the page decides
exactly as it does here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import Conflict, InvalidInput, NotFound
from app.evaluation import (
    choose_thresholds,
    curve_report,
    evaluate_split,
    json_ready,
    summary_metrics,
    threshold_sweep,
)
from app.models import Checkpoint, Evaluation, Project, Tag, TrainingRun
from app.services.jobs import enqueue
from app.services.score_matrices import ScoreMatrix, encode_matrix, read_scores, write_scores
from app.storage import BlobStore

SPLITS = ("val", "train")
CHECKPOINT_KINDS = ("best", "last")
DEFAULT_THRESHOLD = 0.5
CheckpointKind = Literal["best", "last"]
ThresholdMode = Literal["optimized", "custom"]


def as_float32(values: Any) -> np.ndarray:
    """Thresholds rounded to float32 (see the module docstring), as float64."""
    return np.asarray(values, dtype=np.float32).astype(np.float64)


def get_run(*, session: Session, project: Project, run_id: int) -> TrainingRun:
    """A run of the project, or NotFound."""
    run = session.get(TrainingRun, run_id)
    if run is None or run.project_id != project.id:
        raise NotFound(f"run {run_id} not found in project '{project.name}'")
    return run


def get_checkpoint(*, session: Session, run: TrainingRun, kind: str) -> Checkpoint:
    """The run's best or last checkpoint, or NotFound."""
    if kind not in CHECKPOINT_KINDS:
        raise InvalidInput(f"checkpoint must be 'best' or 'last', not '{kind}'")
    checkpoint = session.scalar(
        select(Checkpoint).where(Checkpoint.run_id == run.id, Checkpoint.kind == kind)
    )
    if checkpoint is None:
        raise NotFound(f"run {run.id} has no '{kind}' checkpoint (has it finished training?)")
    return checkpoint


def get_evaluations(*, session: Session, checkpoint: Checkpoint) -> dict[str, Evaluation]:
    """The checkpoint's evaluation rows by split (newest row per split)."""
    rows = session.scalars(
        select(Evaluation).where(Evaluation.checkpoint_id == checkpoint.id).order_by(Evaluation.id)
    )
    return {row.split: row for row in rows if row.split in SPLITS}


def load_scores(*, store: BlobStore, evaluation: Evaluation) -> ScoreMatrix:
    """The evaluation's stored score matrix."""
    return read_scores(store.read_bytes(evaluation.scores_key))


@dataclass
class EvaluationData:
    """A checkpoint's evaluation rows and score matrices, split by split."""

    run: TrainingRun
    checkpoint: Checkpoint
    rows: dict[str, Evaluation]
    matrices: dict[str, ScoreMatrix]

    @property
    def tag_ids(self) -> np.ndarray:
        """The tag ids of the score columns (the same for every split)."""
        return next(iter(self.matrices.values())).tag_ids


def load(
    *, session: Session, store: BlobStore, project: Project, run_id: int, kind: str = "best"
) -> EvaluationData:
    """Load a checkpoint's evaluations, or NotFound when it has none yet."""
    run = get_run(session=session, project=project, run_id=run_id)
    checkpoint = get_checkpoint(session=session, run=run, kind=kind)
    rows = get_evaluations(session=session, checkpoint=checkpoint)
    if not rows:
        hint = " (score it first)" if kind == "last" else " (the run has not stored scores)"
        raise NotFound(f"the {kind} checkpoint of run {run.id} has no evaluation{hint}")
    matrices = {split: load_scores(store=store, evaluation=row) for split, row in rows.items()}
    tag_sets = {tuple(matrix.tag_ids.tolist()) for matrix in matrices.values()}
    if len(tag_sets) != 1:
        raise Conflict(f"the splits of run {run.id} were scored on different tags")
    return EvaluationData(run, checkpoint, rows, matrices)


def optimized_thresholds(data: EvaluationData) -> np.ndarray:
    """Per-tag F1-optimal thresholds: validation where it has positives, else train, else 0.5."""
    pairs = {split: (m.truth, m.scores) for split, m in data.matrices.items() if len(m.asset_ids)}
    if not pairs:
        return np.full(len(data.tag_ids), DEFAULT_THRESHOLD)
    chosen = choose_thresholds(pairs.get("val"), pairs.get("train"), fallback=DEFAULT_THRESHOLD)
    return as_float32(chosen)


def _stored_state(data: EvaluationData) -> dict[str, Any]:
    row = data.rows.get("val") or next(iter(data.rows.values()))
    return dict(row.thresholds or {})


def current_thresholds(data: EvaluationData) -> tuple[ThresholdMode, np.ndarray, np.ndarray]:
    """(mode, thresholds in force, optimised thresholds), per tag in score-column order."""
    optimized = optimized_thresholds(data)
    state = _stored_state(data)
    if state.get("mode") != "custom":
        return "optimized", optimized, optimized
    default = float(state.get("default", DEFAULT_THRESHOLD))
    values = state.get("values") or {}
    current = [float(values.get(str(tag_id), default)) for tag_id in data.tag_ids.tolist()]
    return "custom", as_float32(current), optimized


def thresholds_by_tag(
    *, session: Session, store: BlobStore, project: Project, run_id: int, kind: str
) -> dict[int, float]:
    """The checkpoint's thresholds in force by tag id (empty when it has no evaluation)."""
    try:
        data = load(session=session, store=store, project=project, run_id=run_id, kind=kind)
    except NotFound:
        return {}
    _mode, values, _optimized = current_thresholds(data)
    return dict(zip(data.tag_ids.tolist(), values.tolist(), strict=True))


def describe_tags(
    *, session: Session, project: Project, tag_ids: np.ndarray
) -> list[dict[str, Any]]:
    """Id, name and color of each score column's tag (a deleted tag keeps its id as name)."""
    ids = [int(tag_id) for tag_id in tag_ids.tolist()]
    rows = {
        tag.id: tag
        for tag in session.scalars(select(Tag).where(Tag.project_id == project.id, Tag.id.in_(ids)))
    }
    described = []
    for tag_id in ids:
        tag = rows.get(tag_id)
        described.append(
            {
                "id": tag_id,
                "name": tag.name if tag else f"tag {tag_id}",
                "color": tag.color if tag else "#888888",
            }
        )
    return described


def _checkpoint_info(checkpoint: Checkpoint) -> dict[str, Any]:
    return {
        "id": checkpoint.id,
        "kind": checkpoint.kind,
        "step": checkpoint.step,
        "metric_name": checkpoint.metric_name,
        "metric_value": checkpoint.metric_value,
    }


def _split_report(matrix: ScoreMatrix, thresholds: np.ndarray) -> dict[str, Any]:
    if len(matrix.asset_ids) == 0:
        return {"counts": {"images": 0, "labels": len(matrix.tag_ids)}, "empty": True}
    return evaluate_split(matrix.truth, matrix.scores, thresholds)


def report(
    *,
    session: Session,
    store: BlobStore,
    project: Project,
    run_id: int,
    kind: str = "best",
    include_scores: bool = False,
    include_curves: bool = False,
    thresholds_override: dict[str, Any] | float | None = None,
) -> dict[str, Any]:
    """Metrics of each split at the thresholds in force (or at ``thresholds_override``: one
    value for all tags or {tag id or name: value}, not saved), optionally with scores and
    curves."""
    data = load(session=session, store=store, project=project, run_id=run_id, kind=kind)
    mode, thresholds, optimized = current_thresholds(data)
    if thresholds_override is not None:
        thresholds = _override(data, project, session, thresholds, thresholds_override)
    splits: dict[str, Any] = {}
    for split, matrix in data.matrices.items():
        entry = _split_report(matrix, thresholds)
        entry["evaluation_id"] = data.rows[split].id
        if include_scores:
            entry["matrix"] = encode_matrix(matrix)
        if include_curves and len(matrix.asset_ids):
            entry["curves"] = curve_report(matrix.truth, matrix.scores)
            entry["sweep"] = threshold_sweep(matrix.truth, matrix.scores).to_dict()
        splits[split] = entry
    return {
        "run_id": data.run.id,
        "checkpoint": _checkpoint_info(data.checkpoint),
        "tags": describe_tags(session=session, project=project, tag_ids=data.tag_ids),
        "thresholds": {
            "mode": mode,
            "values": json_ready(thresholds),
            "optimized": json_ready(optimized),
        },
        "splits": splits,
    }


def _override(
    data: EvaluationData,
    project: Project,
    session: Session,
    current: np.ndarray,
    override: dict[str, Any] | float,
) -> np.ndarray:
    if not isinstance(override, dict):
        return as_float32(np.full(len(current), check_threshold(override)))
    tags = describe_tags(session=session, project=project, tag_ids=data.tag_ids)
    chosen = dict(zip(data.tag_ids.tolist(), current.tolist(), strict=True))
    chosen.update(_parse_values(override, tags))
    return as_float32([chosen[tag_id] for tag_id in data.tag_ids.tolist()])


def _parse_values(values: dict[str, float], tags: list[dict[str, Any]]) -> dict[int, float]:
    """Map {"<tag id or name>": value} onto tag ids, naming any unknown tag or bad value."""
    by_key: dict[str, int] = {}
    for tag in tags:
        by_key[str(tag["id"])] = tag["id"]
        by_key.setdefault(str(tag["name"]).lower(), tag["id"])
    parsed: dict[int, float] = {}
    for key, value in values.items():
        tag_id = by_key.get(str(key).strip().lower())
        if tag_id is None:
            raise InvalidInput(f"unknown tag '{key}': it was not part of this run")
        parsed[tag_id] = check_threshold(value, f"threshold of tag '{key}'")
    return parsed


def check_threshold(value: Any, what: str = "threshold") -> float:
    """A threshold as a float in [0, 1], or InvalidInput naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"{what} must be a number between 0 and 1, got {value!r}")
    number = float(value)
    if not 0.0 <= number <= 1.0:
        raise InvalidInput(f"{what} must be between 0 and 1, got {number:g}")
    return number


def save_thresholds(
    *,
    session: Session,
    store: BlobStore,
    project: Project,
    run_id: int,
    kind: str = "best",
    mode: ThresholdMode = "custom",
    values: dict[str, float] | None = None,
    all_tags: float | None = None,
) -> dict[str, Any]:
    """Save the checkpoint's thresholds: optimised, one value for all tags, or per tag.

    With ``mode="custom"``, ``all_tags`` sets every tag first, then ``values`` (tag id or name
    to threshold) override single tags; tags left out keep their current threshold.
    """
    data = load(session=session, store=store, project=project, run_id=run_id, kind=kind)
    tags = describe_tags(session=session, project=project, tag_ids=data.tag_ids)
    if mode == "optimized":
        state: dict[str, Any] = {"default": DEFAULT_THRESHOLD, "mode": "optimized"}
    elif mode == "custom":
        _mode, current, _optimized = current_thresholds(data)
        chosen = dict(zip(data.tag_ids.tolist(), current.tolist(), strict=True))
        if all_tags is not None:
            level = check_threshold(all_tags, "the 'set all' threshold")
            chosen = dict.fromkeys(chosen, level)
        chosen.update(_parse_values(values or {}, tags))
        stored = {str(tag_id): float(as_float32(value)) for tag_id, value in chosen.items()}
        state = {"default": DEFAULT_THRESHOLD, "mode": "custom", "values": stored}
    else:
        raise InvalidInput(f"mode must be 'optimized' or 'custom', not '{mode}'")
    for row in data.rows.values():
        row.thresholds = state
    session.commit()
    return report(session=session, store=store, project=project, run_id=run_id, kind=kind)


def _summaries(data: EvaluationData) -> dict[str, Any]:
    _mode, thresholds, _optimized = current_thresholds(data)
    result: dict[str, Any] = {"checkpoint": _checkpoint_info(data.checkpoint), "splits": {}}
    for split, matrix in data.matrices.items():
        if len(matrix.asset_ids):
            summary = summary_metrics(matrix.truth, matrix.scores, thresholds)
            result["splits"][split] = json_ready(summary)
    return result


def compare(*, session: Session, store: BlobStore, project: Project, run_id: int) -> dict[str, Any]:
    """Summary metrics of the best and the last checkpoint, each at its own thresholds."""
    run = get_run(session=session, project=project, run_id=run_id)
    result: dict[str, Any] = {"run_id": run.id}
    for kind in CHECKPOINT_KINDS:
        try:
            data = load(session=session, store=store, project=project, run_id=run.id, kind=kind)
        except NotFound as missing:
            checkpoint = session.scalar(
                select(Checkpoint).where(Checkpoint.run_id == run.id, Checkpoint.kind == kind)
            )
            result[kind] = {
                "available": False,
                "has_checkpoint": checkpoint is not None,
                "reason": missing.message,
            }
            continue
        result[kind] = {"available": True, **_summaries(data)}
    return result


def request_scoring(
    *, session: Session, project: Project, run_id: int, kind: str = "last"
) -> list[str]:
    """Queue scoring of the checkpoint on each split it has no scores for; return those splits.

    The image sets and ground truth are those of the best checkpoint's evaluations.
    """
    run = get_run(session=session, project=project, run_id=run_id)
    checkpoint = get_checkpoint(session=session, run=run, kind=kind)
    best = get_checkpoint(session=session, run=run, kind="best")
    reference = get_evaluations(session=session, checkpoint=best)
    if not reference:
        raise Conflict(f"run {run.id} stored no scores for its best checkpoint to compare with")
    have = get_evaluations(session=session, checkpoint=checkpoint)
    missing = [split for split in SPLITS if split in reference and split not in have]
    checkpoint_id = checkpoint.id
    session.commit()
    for split in missing:
        enqueue("evaluations.score_checkpoint", checkpoint_id, split)
    return missing


def scoring_reference(*, session: Session, checkpoint_id: int, split: str) -> Evaluation | None:
    """The evaluation whose images and truth a checkpoint of the same run is scored on."""
    checkpoint = session.get(Checkpoint, checkpoint_id)
    if checkpoint is None:
        return None
    return session.scalar(
        select(Evaluation)
        .join(Checkpoint, Checkpoint.id == Evaluation.checkpoint_id)
        .where(Evaluation.run_id == checkpoint.run_id, Evaluation.split == split)
        .order_by((Checkpoint.kind == "best").desc(), Evaluation.id)
        .limit(1)
    )


def record_evaluation(
    *,
    session: Session,
    store: BlobStore,
    checkpoint_id: int,
    split: str,
    matrix: ScoreMatrix,
) -> Evaluation:
    """Store a checkpoint's scores on a split and its evaluation row, unless one exists."""
    checkpoint = session.get(Checkpoint, checkpoint_id)
    if checkpoint is None:
        raise NotFound(f"checkpoint {checkpoint_id} not found")
    existing = get_evaluations(session=session, checkpoint=checkpoint).get(split)
    if existing is not None:
        return existing
    key = f"runs/{checkpoint.run_id}/scores_{split}_{checkpoint.kind}.npz"
    store.put(key, write_scores(matrix), "application/octet-stream")
    tag_ids = [int(t) for t in matrix.tag_ids.tolist()]
    # The same shapes the trainer stores for the best checkpoint (metrics at 0.5).
    metrics: dict[str, Any] = {"tag_ids": tag_ids, "step": checkpoint.step, "loss": None}
    cooccurrence: dict[str, Any] = {"threshold": DEFAULT_THRESHOLD, "tag_ids": tag_ids}
    if len(matrix.asset_ids):
        split_report = evaluate_split(matrix.truth, matrix.scores, DEFAULT_THRESHOLD)
        cooccurrence.update(split_report.pop("cooccurrence"))
        metrics.update(split_report)
    evaluation = Evaluation(
        run_id=checkpoint.run_id,
        checkpoint_id=checkpoint.id,
        split=split,
        scores_key=key,
        metrics=metrics,
        thresholds={"default": DEFAULT_THRESHOLD},
        cooccurrence=cooccurrence,
    )
    session.add(evaluation)
    session.commit()
    return evaluation
