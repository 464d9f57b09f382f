"""/api/v1/projects/{project_id}/sources: storage sources, syncs and their progress."""

from __future__ import annotations

from fastapi import APIRouter, status
from sqlalchemy.orm import Session

from app.db import SessionDep
from app.deps import CurrentUser, ProjectDep
from app.models import StorageSource, SyncJob
from app.schemas.sources import (
    SourceCreate,
    SourceRead,
    SourceUpdate,
    SyncErrorRead,
    SyncJobRead,
)
from app.services import sources as source_service
from app.services import sync as sync_service

router = APIRouter(prefix="/projects/{project_id}/sources", tags=["sources"])


def job_read(session: Session, job: SyncJob) -> SyncJobRead:
    """The API view of a sync job."""
    return SyncJobRead(
        id=job.id, source_id=job.source_id, status=job.status, total=job.total,
        processed=job.processed, imported=job.imported, updated=job.updated,
        duplicates=job.duplicates, removed=job.removed, failed=job.failed,
        errors=[SyncErrorRead(key=str(e.get("key", "")), message=str(e.get("message", "")))
                for e in job.errors],
        error=job.error, removed_keys=sync_service.removed_keys(session=session, job=job),
        heartbeat_at=job.heartbeat_at, started_at=job.started_at,
        finished_at=job.finished_at, created_at=job.created_at,
    )


def source_read(session: Session, source: StorageSource) -> SourceRead:
    """The API view of a source: settings and masked secret hints, never the secrets."""
    jobs = sync_service.get_jobs(session=session, source=source, limit=1)
    return SourceRead(
        id=source.id, project_id=source.project_id, kind=source.kind, name=source.name,
        settings=dict(source.settings), secret_hints=source_service.secret_hints(source),
        prefix=source.prefix, remove_missing=source.remove_missing,
        last_sync_at=source.last_sync_at, created_at=source.created_at,
        last_job=job_read(session, jobs[0]) if jobs else None,
    )


@router.get("", response_model=list[SourceRead])
def list_sources(project: ProjectDep, session: SessionDep) -> list[SourceRead]:
    """The project's storage sources."""
    return [source_read(session, s) for s in source_service.get_all(session=session,
                                                                     project=project)]


@router.post("", response_model=SourceRead, status_code=status.HTTP_201_CREATED)
def create_source(
    project: ProjectDep, body: SourceCreate, session: SessionDep, user: CurrentUser
) -> SourceRead:
    """Add an S3 bucket or Azure container (admins: a server folder) to sync images from."""
    source = source_service.create(
        session=session, project=project, kind=body.kind, name=body.name,
        config=body.settings, secrets=body.secrets, prefix=body.prefix,
        remove_missing=body.remove_missing, user=user,
    )
    return source_read(session, source)


@router.get("/{source_id}", response_model=SourceRead)
def get_source(project: ProjectDep, source_id: int, session: SessionDep) -> SourceRead:
    """One source."""
    return source_read(session, source_service.get(session=session, project=project,
                                                   source_id=source_id))


@router.patch("/{source_id}", response_model=SourceRead)
def update_source(
    project: ProjectDep, source_id: int, body: SourceUpdate, session: SessionDep,
    user: CurrentUser,
) -> SourceRead:
    """Change a source; only the fields present change."""
    source = source_service.get(session=session, project=project, source_id=source_id)
    source_service.update(
        session=session, source=source, name=body.name, config=body.settings,
        secrets=body.secrets, prefix=body.prefix, remove_missing=body.remove_missing, user=user,
    )
    return source_read(session, source)


@router.delete("/{source_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_source(project: ProjectDep, source_id: int, session: SessionDep) -> None:
    """Delete a source and its sync history; its images stay in the project."""
    source = source_service.get(session=session, project=project, source_id=source_id)
    source_service.delete(session=session, source=source)


@router.post("/{source_id}/sync", response_model=SyncJobRead,
             status_code=status.HTTP_202_ACCEPTED)
def sync_source(project: ProjectDep, source_id: int, session: SessionDep) -> SyncJobRead:
    """Start a sync; poll the returned job for progress."""
    source = source_service.get(session=session, project=project, source_id=source_id)
    return job_read(session, sync_service.start_sync(session=session, source=source))


@router.get("/{source_id}/sync-jobs", response_model=list[SyncJobRead])
def list_sync_jobs(project: ProjectDep, source_id: int, session: SessionDep) -> list[SyncJobRead]:
    """The source's latest sync jobs, newest first."""
    source = source_service.get(session=session, project=project, source_id=source_id)
    return [job_read(session, job) for job in sync_service.get_jobs(session=session,
                                                                    source=source)]


@router.get("/{source_id}/sync-jobs/{job_id}", response_model=SyncJobRead)
def get_sync_job(
    project: ProjectDep, source_id: int, job_id: int, session: SessionDep
) -> SyncJobRead:
    """A sync job's status and progress (poll this while it runs)."""
    source = source_service.get(session=session, project=project, source_id=source_id)
    return job_read(session, sync_service.get_job(session=session, source=source, job_id=job_id))
