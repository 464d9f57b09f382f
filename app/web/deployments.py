"""Pages: a project's deployments (deploy, manage, batch predictions) and "Try it"."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.db import SessionDep
from app.deps import PageProjectDep
from app.errors import NotFound
from app.schemas.deployments import DeploymentRead
from app.services import deployments as deployment_service
from app.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/projects/{project_id}/deployments")
def deployments_page(request: Request, project: PageProjectDep, session: SessionDep) -> Response:
    """Deploy a checkpoint, manage deployments, run batch predictions."""
    deployments = [
        DeploymentRead.of(row).model_dump(mode="json")
        for row in deployment_service.get_all(session=session, project=project)
    ]
    checkpoints = deployment_service.deployable_checkpoints(session=session, project=project)
    return render(
        request, "deployments.html", project=project, active="deployments",
        deployments=deployments, checkpoints=checkpoints,
    )  # fmt: skip


@router.get("/projects/{project_id}/deployments/{deployment_id}/try")
def try_page(
    request: Request, project: PageProjectDep, deployment_id: int, session: SessionDep
) -> Response:
    """Drop an image, see its tags with scores and thresholds."""
    deployment = deployment_service.get(session=session, deployment_id=deployment_id)
    if deployment.project_id != project.id:
        raise NotFound(f"deployment {deployment_id} not found in project '{project.name}'")
    return render(
        request, "try.html", project=project, active="deployments",
        deployment=DeploymentRead.of(deployment).model_dump(mode="json"),
    )  # fmt: skip
