"""Page: a run's evaluation (metrics, curves, thresholds, predictions browser, co-occurrence)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.db import SessionDep
from app.deps import PageProjectDep
from app.services import evaluations as evaluation_service
from app.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/projects/{project_id}/runs/{run_id}/evaluation")
def evaluation_page(
    request: Request,
    project: PageProjectDep,
    run_id: int,
    session: SessionDep,
    checkpoint: Literal["best", "last"] = "best",
) -> Response:
    """The evaluation of a run's best (or last) checkpoint; the data comes from the API."""
    run = evaluation_service.get_run(session=session, project=project, run_id=run_id)
    return render(
        request, "evaluation.html", project=project, run=run, checkpoint=checkpoint,
        active="runs",
    )  # fmt: skip
