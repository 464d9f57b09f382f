"""Pages: a project's runs, and one run's live dashboard."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.db import SessionDep
from app.deps import PageProjectDep
from app.schemas.runs import CheckpointRead, RunDetail, RunRead
from app.services import runs as run_service
from app.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/projects/{project_id}/runs")
def runs_page(request: Request, session: SessionDep, project: PageProjectDep) -> Response:
    """Every run of the project with its status, backbone, best metric and duration."""
    runs = [RunRead.from_run(run) for run in run_service.get_all(session=session, project=project)]
    return render(
        request, "runs.html", project=project, active="runs", runs=runs,
        runs_data=[run.model_dump(mode="json") for run in runs],
    )  # fmt: skip


@router.get("/projects/{project_id}/runs/{run_id}")
def run_page(
    request: Request, session: SessionDep, project: PageProjectDep, run_id: int
) -> Response:
    """A run's progress, live charts, log, frozen configuration and checkpoints."""
    run = run_service.get(session=session, project=project, run_id=run_id)
    detail = RunDetail.from_run(run)
    checkpoints = [
        CheckpointRead.model_validate(row).model_dump(mode="json")
        for row in run_service.get_checkpoints(session=session, run=run)
    ]
    return render(
        request, "run.html", project=project, active="runs", run=detail,
        run_data={"run": detail.model_dump(mode="json"), "checkpoints": checkpoints},
    )  # fmt: skip
