"""/api/v1/projects/{project_id}/runs/{run_id}/evaluation: reports, thresholds, comparison."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, status

from app.db import SessionDep
from app.deps import ProjectDep, StorageDep
from app.schemas.evaluations import ScoreQueued, ScoreRequest, ThresholdsUpdate
from app.services import evaluations as evaluation_service
from app.services import predictions as prediction_service

router = APIRouter(prefix="/projects/{project_id}/runs/{run_id}/evaluation", tags=["evaluation"])


@router.get("")
def get_evaluation(
    project: ProjectDep,
    run_id: int,
    session: SessionDep,
    storage: StorageDep,
    checkpoint: Literal["best", "last"] = "best",
    scores: bool = False,
    curves: bool = False,
    thresholds: str | None = None,
) -> dict[str, Any]:
    """Metrics of the train and val splits at the saved thresholds.

    `thresholds` evaluates at other thresholds without saving them: one number, or a JSON
    object {tag id or name: value}. `scores=true` adds each split's score matrix (base64
    little-endian float32 scores and uint8 truth, row-major, `shape` [images, tags]);
    `curves=true` adds PR/ROC curves and the threshold sweep.
    """
    return evaluation_service.report(
        session=session,
        store=storage,
        project=project,
        run_id=run_id,
        kind=checkpoint,
        include_scores=scores,
        include_curves=curves,
        thresholds_override=prediction_service.parse_thresholds_field(thresholds),
    )


@router.put("/thresholds")
def save_thresholds(
    project: ProjectDep, run_id: int, body: ThresholdsUpdate, session: SessionDep,
    storage: StorageDep,
) -> dict[str, Any]:  # fmt: skip
    """Save the checkpoint's thresholds (optimised, 'set all', or per tag); returns the report."""
    return evaluation_service.save_thresholds(
        session=session,
        store=storage,
        project=project,
        run_id=run_id,
        kind=body.checkpoint,
        mode=body.mode,
        values=body.values,
        all_tags=body.all,
    )


@router.get("/compare")
def compare_checkpoints(
    project: ProjectDep, run_id: int, session: SessionDep, storage: StorageDep
) -> dict[str, Any]:
    """Summary metrics of the best and the last checkpoint, each at its thresholds."""
    return evaluation_service.compare(
        session=session, store=storage, project=project, run_id=run_id
    )


@router.post("/score", response_model=ScoreQueued, status_code=status.HTTP_202_ACCEPTED)
def score_checkpoint(
    project: ProjectDep, run_id: int, body: ScoreRequest, session: SessionDep
) -> ScoreQueued:
    """Queue scoring of a checkpoint (usually `last`) on the splits it has no scores for."""
    queued = evaluation_service.request_scoring(
        session=session, project=project, run_id=run_id, kind=body.checkpoint
    )
    return ScoreQueued(queued=queued)
