"""Page: the workflow builder (dataset → augmentations → model → training blocks)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.db import SessionDep
from app.deps import PageProjectDep
from app.schemas.workflows import WorkflowRead
from app.services import workflows as workflow_service
from app.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/projects/{project_id}/workflows")
def workflows_page(
    request: Request, session: SessionDep, project: PageProjectDep, workflow: int | None = None
) -> Response:
    """The project's workflows and the builder of the selected one."""
    rows = workflow_service.get_all(session=session, project=project)
    ids = [row.id for row in rows]
    page_data = {
        "project_id": project.id,
        "workflows": [WorkflowRead.model_validate(row).model_dump(mode="json") for row in rows],
        "selected": workflow if workflow in ids else (ids[0] if ids else None),
        "archs": [arch.model_dump() for arch in workflow_service.archs()],
        "default_graph": workflow_service.default_graph(
            session=session, project=project
        ).model_dump(mode="json"),
    }
    return render(
        request, "workflows.html", project=project, active="workflows", page_data=page_data
    )
