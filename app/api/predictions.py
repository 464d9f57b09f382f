"""/api/v1: batch prediction jobs over uploaded images, and their results."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request, Response, status
from starlette.concurrency import run_in_threadpool

from app.api.image_uploads import read_uploads
from app.config import settings
from app.db import SessionDep
from app.deps import CurrentUser, ProjectDep, StorageDep
from app.errors import InvalidInput
from app.schemas.predictions import PredictionJobRead
from app.services import deployments as deployment_service
from app.services import predictions as prediction_service

router = APIRouter(tags=["predictions"])


@router.post(
    "/deployments/{deployment_id}/prediction-jobs",
    response_model=PredictionJobRead,
    status_code=status.HTTP_202_ACCEPTED,
)
async def create_prediction_job(
    request: Request,
    deployment_id: int,
    user: CurrentUser,
    session: SessionDep,
    storage: StorageDep,
) -> PredictionJobRead:
    """Upload images (or zips of images) as 'files' and queue their prediction."""
    deployment = await run_in_threadpool(
        deployment_service.get, session=session, deployment_id=deployment_id
    )
    uploads, _fields = await read_uploads(
        request,
        max_files=settings.max_zip_members,
        max_file_bytes=settings.max_zip_bytes,
        what="files",
    )
    job = await run_in_threadpool(
        prediction_service.create_job,
        session=session,
        store=storage,
        deployment=deployment,
        uploads=uploads,
        user=user,
    )
    return PredictionJobRead.model_validate(job)


@router.get("/projects/{project_id}/prediction-jobs", response_model=list[PredictionJobRead])
def list_prediction_jobs(project: ProjectDep, session: SessionDep) -> list[PredictionJobRead]:
    """The project's latest batch prediction jobs."""
    jobs = prediction_service.get_jobs(session=session, project=project)
    return [PredictionJobRead.model_validate(job) for job in jobs]


@router.get("/prediction-jobs/{job_id}", response_model=PredictionJobRead)
def get_prediction_job(job_id: int, _user: CurrentUser, session: SessionDep) -> PredictionJobRead:
    """One job and its progress."""
    return PredictionJobRead.model_validate(
        prediction_service.get_job(session=session, job_id=job_id)
    )


@router.get("/prediction-jobs/{job_id}/results")
def download_results(
    job_id: int,
    _user: CurrentUser,
    session: SessionDep,
    storage: StorageDep,
    format: str = "json",
) -> Response:
    """The results as `json`, `csv`, or a `zip` of the images in one folder per predicted tag."""
    if format not in prediction_service.RESULT_FORMATS:
        raise InvalidInput(
            f"format must be one of {', '.join(prediction_service.RESULT_FORMATS)}, not '{format}'"
        )
    job = prediction_service.get_job(session=session, job_id=job_id)
    document = prediction_service.load_results(store=storage, job=job)
    name = f"predictions-{job.id}.{format}"
    disposition = {"Content-Disposition": f'attachment; filename="{name}"'}
    if format == "csv":
        body = prediction_service.results_csv(document)
        return Response(body, media_type="text/csv; charset=utf-8", headers=disposition)
    if format == "zip":
        data = prediction_service.results_zip(store=storage, document=document)
        return Response(data, media_type="application/zip", headers=disposition)
    return Response(json.dumps(document), media_type="application/json", headers=disposition)


@router.delete("/prediction-jobs/{job_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_prediction_job(
    job_id: int, _user: CurrentUser, session: SessionDep, storage: StorageDep
) -> None:
    """Delete a job and its files."""
    job = prediction_service.get_job(session=session, job_id=job_id)
    prediction_service.delete_job(session=session, store=storage, job=job)
