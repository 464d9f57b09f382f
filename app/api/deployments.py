"""/api/v1: deployments of a project, their bundles, and predictions with them."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status
from starlette.concurrency import run_in_threadpool

from app.api.image_uploads import read_uploads
from app.config import settings
from app.db import SessionDep
from app.deps import CurrentUser, ProjectDep, StorageDep
from app.errors import InvalidInput
from app.models import Deployment
from app.schemas.deployments import (
    DeploymentCreate,
    DeploymentRead,
    DeploymentUpdate,
    PredictResponse,
)
from app.services import deployment_files
from app.services import deployments as deployment_service
from app.services import predictions as prediction_service
from app.storage import BlobStore

router = APIRouter(tags=["deployments"])


@router.get("/projects/{project_id}/deployments", response_model=list[DeploymentRead])
def list_deployments(project: ProjectDep, session: SessionDep) -> list[DeploymentRead]:
    """The project's deployments, newest first."""
    rows = deployment_service.get_all(session=session, project=project)
    return [DeploymentRead.of(row) for row in rows]


@router.post(
    "/projects/{project_id}/deployments",
    response_model=DeploymentRead,
    status_code=status.HTTP_202_ACCEPTED,
)
def create_deployment(
    project: ProjectDep, body: DeploymentCreate, session: SessionDep
) -> DeploymentRead:
    """Queue the export of a run's best or last checkpoint; it goes live once verified."""
    deployment = deployment_service.create(
        session=session,
        project=project,
        run_id=body.run_id,
        kind=body.checkpoint,
        name=body.name,
        make_default=body.make_default,
        quantize=body.quantize,
    )
    return DeploymentRead.of(deployment)


@router.get("/deployments/{deployment_id}", response_model=DeploymentRead)
def get_deployment(deployment_id: int, _user: CurrentUser, session: SessionDep) -> DeploymentRead:
    """One deployment."""
    return DeploymentRead.of(deployment_service.get(session=session, deployment_id=deployment_id))


@router.patch("/deployments/{deployment_id}", response_model=DeploymentRead)
def update_deployment(
    deployment_id: int,
    body: DeploymentUpdate,
    _user: CurrentUser,
    session: SessionDep,
    storage: StorageDep,
) -> DeploymentRead:
    """Rename, switch on/off, make default or change thresholds."""
    deployment = deployment_service.get(session=session, deployment_id=deployment_id)
    fields = body.model_dump(exclude_unset=True)
    deployment_service.update_deployment(
        session=session, store=storage, deployment=deployment, **fields
    )
    return DeploymentRead.of(deployment)


@router.delete("/deployments/{deployment_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_deployment(
    deployment_id: int, _user: CurrentUser, session: SessionDep, storage: StorageDep
) -> None:
    """Delete a deployment and its files."""
    deployment = deployment_service.get(session=session, deployment_id=deployment_id)
    deployment_service.delete(session=session, store=storage, deployment=deployment)


@router.post(
    "/deployments/{deployment_id}/int8",
    response_model=DeploymentRead,
    status_code=status.HTTP_202_ACCEPTED,
)
def build_int8(deployment_id: int, _user: CurrentUser, session: SessionDep) -> DeploymentRead:
    """Queue a dynamic-INT8 copy of the model, measured against the float32 one."""
    deployment = deployment_service.get(session=session, deployment_id=deployment_id)
    return DeploymentRead.of(
        deployment_service.request_int8(session=session, deployment=deployment)
    )


@router.get("/deployments/{deployment_id}/bundle")
def download_bundle(
    deployment_id: int,
    _user: CurrentUser,
    session: SessionDep,
    storage: StorageDep,
    variant: str = "fp32",
) -> Response:
    """A zip: model.onnx, labels.json, thresholds.json, preprocessing.json, README.md."""
    deployment = deployment_service.get(session=session, deployment_id=deployment_id)
    data = deployment_files.bundle(store=storage, deployment=deployment, variant=variant)
    filename = f"polytag-deployment-{deployment.id}-v{deployment.version}-{variant}.zip"
    return Response(
        data,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _top_k(raw: str | None) -> int | None:
    if raw is None or raw.strip() == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise InvalidInput(f"top_k must be a whole number, got {raw[:20]!r}") from None


async def _serve(request: Request, storage: BlobStore, deployment: Deployment) -> dict[str, object]:
    uploads, fields = await read_uploads(
        request,
        max_files=settings.predict_max_images,
        max_file_bytes=settings.max_upload_bytes,
    )
    thresholds = prediction_service.parse_thresholds_field(
        fields.get("thresholds", request.query_params.get("thresholds"))
    )
    top_k = _top_k(fields.get("top_k", request.query_params.get("top_k")))
    return await run_in_threadpool(
        prediction_service.predict,
        store=storage,
        deployment=deployment,
        uploads=uploads,
        thresholds=thresholds,
        top_k=top_k,
    )


PREDICT_DOC = """Score images (multipart file fields, usually all named `files`).

Optional form fields (or query parameters): `thresholds`, one number for every tag or a JSON
object `{"tag name": value}`, each in [0, 1]; `top_k`, list only the k highest-scoring tags.
A tag is predicted when its score >= its threshold."""


@router.post(
    "/deployments/{deployment_id}/predict",
    response_model=PredictResponse,
    description=PREDICT_DOC,
)
async def predict(
    request: Request,
    deployment_id: int,
    _user: CurrentUser,
    session: SessionDep,
    storage: StorageDep,
) -> dict[str, object]:
    """Predict with one deployment."""
    deployment = await run_in_threadpool(
        deployment_service.get, session=session, deployment_id=deployment_id
    )
    return await _serve(request, storage, deployment)


@router.post(
    "/projects/{project_id}/predict", response_model=PredictResponse, description=PREDICT_DOC
)
async def predict_default(
    request: Request, project: ProjectDep, session: SessionDep, storage: StorageDep
) -> dict[str, object]:
    """Predict with the project's default deployment."""
    deployment = await run_in_threadpool(
        deployment_service.get_default, session=session, project=project
    )
    return await _serve(request, storage, deployment)
