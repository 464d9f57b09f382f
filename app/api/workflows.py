"""/api/v1/projects/{project_id}/workflows"""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from app.db import SessionDep
from app.deps import ProjectDep, StorageDep
from app.schemas.workflows import (
    AugmentationPreviewRequest,
    WorkflowCheck,
    WorkflowCreate,
    WorkflowGraph,
    WorkflowOptions,
    WorkflowRead,
    WorkflowUpdate,
)
from app.services import workflows as workflow_service
from app.services.augment_preview import preview_augmentations

router = APIRouter(prefix="/projects/{project_id}/workflows", tags=["workflows"])


@router.get("", response_model=list[WorkflowRead])
def list_workflows(project: ProjectDep, session: SessionDep) -> list[WorkflowRead]:
    """The project's workflows, most recently changed first."""
    rows = workflow_service.get_all(session=session, project=project)
    return [WorkflowRead.model_validate(row) for row in rows]


@router.post("", response_model=WorkflowRead, status_code=status.HTTP_201_CREATED)
def create_workflow(project: ProjectDep, body: WorkflowCreate, session: SessionDep) -> WorkflowRead:
    """Save a new workflow; without a graph it trains every active tag with the defaults."""
    workflow = workflow_service.create(
        session=session, project=project, name=body.name, graph=body.graph
    )
    return WorkflowRead.model_validate(workflow)


@router.get("/options", response_model=WorkflowOptions)
def workflow_options(project: ProjectDep, session: SessionDep) -> WorkflowOptions:
    """The backbones on offer and this project's default graph."""
    return WorkflowOptions(
        archs=workflow_service.archs(),
        default_graph=workflow_service.default_graph(session=session, project=project),
    )


@router.post("/check", response_model=WorkflowCheck)
def check_graph(project: ProjectDep, body: WorkflowGraph, session: SessionDep) -> WorkflowCheck:
    """What a graph would train on now, what blocks it, and its estimated length."""
    return workflow_service.check(session=session, project=project, graph=body)


@router.post(
    "/augmentation-preview",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}, "description": "A grid of samples"}},
)
def augmentation_preview(
    project: ProjectDep, body: AugmentationPreviewRequest, session: SessionDep, storage: StorageDep
) -> Response:
    """A JPEG grid: a few project images, each as trained on and with random augmentations."""
    image = preview_augmentations(
        session=session,
        storage=storage,
        project=project,
        augmentations=body.augmentations,
        input_size=body.input_size,
        images=body.images,
        variants=body.variants,
        seed=body.seed,
    )
    return Response(image, media_type="image/jpeg", headers={"Cache-Control": "no-store"})


@router.get("/{workflow_id}", response_model=WorkflowRead)
def read_workflow(project: ProjectDep, workflow_id: int, session: SessionDep) -> WorkflowRead:
    """One workflow."""
    workflow = workflow_service.get(session=session, project=project, workflow_id=workflow_id)
    return WorkflowRead.model_validate(workflow)


@router.put("/{workflow_id}", response_model=WorkflowRead)
def update_workflow(
    project: ProjectDep, workflow_id: int, body: WorkflowUpdate, session: SessionDep
) -> WorkflowRead:
    """Rename and/or replace the graph; a change makes a new version."""
    workflow = workflow_service.get(session=session, project=project, workflow_id=workflow_id)
    workflow_service.update(session=session, workflow=workflow, name=body.name, graph=body.graph)
    return WorkflowRead.model_validate(workflow)


@router.delete("/{workflow_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_workflow(project: ProjectDep, workflow_id: int, session: SessionDep) -> None:
    """Delete a workflow (its runs keep their frozen copy)."""
    workflow = workflow_service.get(session=session, project=project, workflow_id=workflow_id)
    workflow_service.delete(session=session, workflow=workflow)


@router.get("/{workflow_id}/check", response_model=WorkflowCheck)
def check_workflow(project: ProjectDep, workflow_id: int, session: SessionDep) -> WorkflowCheck:
    """The check of a saved workflow against the project's labels now."""
    workflow = workflow_service.get(session=session, project=project, workflow_id=workflow_id)
    return workflow_service.check(session=session, project=project, graph=workflow.graph)
