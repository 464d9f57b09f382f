"""Sync a storage source into its project: list, compare with the cursor, import what changed.

The cursor is one `source_object` row per object key (etag, asset). Each object is committed on
its own, together with the job's counters and heartbeat, so a sync that dies mid-way resumes
(on redelivery of the same job once its heartbeat is stale, or in a new job) without fetching
again anything it already has. Rules per listed image object:

* unknown key: fetched, verified and imported, or linked to the asset that already has those
  bytes (sha256) — counted as a duplicate, never stored twice;
* known key, same etag: skipped (also when someone deleted its asset: deletions stick);
* known key, new etag (changed object): the asset is updated in place — new bytes, sha256, size,
  thumbnail — keeping its id, tags and split; if the new bytes equal another asset, the key is
  linked to that one instead;
* key gone from the listing: marked removed and reported; with `remove_missing` its asset is
  deleted too (unless another key still points at it). A removed key that comes back is restored.

Transient errors are retried with backoff; a listing that still fails, or a permanent error (no
such bucket, access denied), fails the job with a plain message. A single object that cannot be
read or is not a usable image is counted as failed, with its reason, and the sync goes on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from app.config import settings
from app.db import new_session
from app.errors import Conflict, NotFound
from app.imports.images import process_image
from app.imports.rejections import RejectedFile, format_bytes
from app.models import Asset, Project, SourceObject, StorageSource, SyncJob, utcnow
from app.services import sources as source_service
from app.services.ingest import asset_key, delete_keys, insert_assets, thumb_key
from app.storage import BlobStore
from app.storage.sources import (
    SourceClient,
    SourceError,
    TransientSourceError,
    retry,
)
from app.storage.sources import SourceObject as Listed

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")
ACTIVE = ("queued", "running")
MAX_ERRORS = 200
SYNC_TASK = "sync.run"


def start_sync(*, session: Session, source: StorageSource) -> SyncJob:
    """Queue a sync of the source (one at a time per source) and enqueue its task.

    A job still queued is sent again rather than doubled (only one worker can claim it), so a
    lost broker message never blocks a source; a running job with a fresh heartbeat is a
    Conflict; one whose worker died is failed and replaced.
    """
    from app.services.jobs import enqueue

    stale = utcnow() - timedelta(seconds=settings.stale_run_after_s)
    # Fresh values: the worker updates these rows from its own sessions.
    active = session.scalar(
        select(SyncJob).where(SyncJob.source_id == source.id, SyncJob.status.in_(ACTIVE))
        .order_by(SyncJob.id.desc()).execution_options(populate_existing=True)
    )
    if active is not None and active.status == "queued":
        enqueue(SYNC_TASK, active.id)
        return active
    if active is not None:
        if (active.heartbeat_at or active.created_at) > stale:
            raise Conflict(f"source '{source.name}' is already syncing (job {active.id})",
                           details={"job_id": active.id})
        active.status, active.finished_at = "failed", utcnow()
        active.error = "the worker stopped responding; a new sync takes over"
    job = SyncJob(source_id=source.id, status="queued")
    session.add(job)
    session.commit()
    enqueue(SYNC_TASK, job.id)
    return job


def get_job(*, session: Session, source: StorageSource, job_id: int) -> SyncJob:
    """One sync job of the source, or NotFound."""
    job = session.get(SyncJob, job_id)
    if job is None or job.source_id != source.id:
        raise NotFound(f"sync job {job_id} not found for source '{source.name}'")
    return job


def get_jobs(*, session: Session, source: StorageSource, limit: int = 20) -> list[SyncJob]:
    """The source's latest sync jobs, newest first."""
    return list(session.scalars(select(SyncJob).where(SyncJob.source_id == source.id)
                                .order_by(SyncJob.id.desc()).limit(limit)))


def removed_keys(*, session: Session, job: SyncJob, limit: int = 100) -> list[str]:
    """Keys that this job found gone from the source."""
    if job.started_at is None:
        return []
    query = select(SourceObject.key).where(SourceObject.source_id == job.source_id,
                                           SourceObject.removed_at >= job.started_at)
    if job.finished_at is not None:
        query = query.where(SourceObject.removed_at <= job.finished_at)
    return list(session.scalars(query.order_by(SourceObject.key).limit(limit)))


def claim(*, session: Session, job_id: int, stale_after_s: float) -> bool:
    """Take a queued job, or a running one whose worker died (stale heartbeat); commit."""
    now = utcnow()
    stale = now - timedelta(seconds=stale_after_s)
    claimed = session.execute(
        update(SyncJob)
        .where(SyncJob.id == job_id, or_(
            SyncJob.status == "queued",
            (SyncJob.status == "running") & (func.coalesce(SyncJob.heartbeat_at,
                                                           SyncJob.created_at) <= stale),
        ))
        .values(status="running", heartbeat_at=now, started_at=now, error=None, total=0,
                processed=0, imported=0, updated=0, duplicates=0, removed=0, failed=0, errors=[])
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return bool(getattr(claimed, "rowcount", 0))


def run_sync(
    *,
    job_id: int,
    storage: BlobStore,
    open_client: Callable[[StorageSource], SourceClient] = source_service.open_client,
    attempts: int = 4,
    base_delay: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
    stale_after_s: float | None = None,
) -> str:
    """Run (or resume) a sync job; returns its final status, or "skipped" if not claimable."""
    with new_session() as session:
        if not claim(session=session, job_id=job_id,
                     stale_after_s=settings.stale_run_after_s if stale_after_s is None
                     else stale_after_s):
            return "skipped"
        job = session.get(SyncJob, job_id)
        assert job is not None
        source = session.get(StorageSource, job.source_id)
        project = session.get(Project, source.project_id) if source else None
        assert source is not None and project is not None
        run = _Run(session, storage, source, job,
                   lambda fn: retry(fn, attempts, base_delay, sleep=sleep))
        try:
            client = open_client(source)
            listed = run.retry(lambda: [o for o in client.list()
                                        if o.key.lower().endswith(IMAGE_SUFFIXES)])
            job.total = len(listed)
            session.commit()
            for item in listed:
                run.sync_object(client, item)
            run.record_removals({item.key for item in listed})
            source.last_sync_at = utcnow()
            _finish(session, job, "succeeded", None)
        except SourceError as exc:
            session.rollback()
            _finish(session, job, "failed", str(exc))
        except Exception as exc:
            session.rollback()
            _finish(session, job, "failed", f"unexpected error: {type(exc).__name__}: {exc}")
            raise
        return job.status


def _finish(session: Session, job: SyncJob, status: str, error: str | None) -> None:
    job.status, job.error = status, error
    job.finished_at = job.heartbeat_at = utcnow()
    session.commit()


class _Run:
    """One pass over a source's listing; every object is committed on its own."""

    def __init__(self, session: Session, storage: BlobStore, source: StorageSource, job: SyncJob,
                 retry_call: Callable[[Callable[[], Any]], Any]) -> None:
        self.session, self.storage, self.source, self.job = session, storage, source, job
        self.retry = retry_call
        self.cursor = {row.key: row for row in session.scalars(
            select(SourceObject).where(SourceObject.source_id == source.id))}
        # Blobs replaced by an update, deleted once the new ones are committed.
        self.replaced: list[str] = []

    def sync_object(self, client: SourceClient, item: Listed) -> None:
        """Bring one listed object up to date and commit."""
        row = self.cursor.get(item.key)
        if row is not None and row.etag == item.etag and (
            row.removed_at is None or row.asset_id is not None
        ):
            row.removed_at = None  # unchanged, or back after being reported removed
        else:
            if row is None:
                row = SourceObject(source_id=self.source.id, key=item.key)
                self.session.add(row)
                self.cursor[item.key] = row
            self._fetch(client, item, row)
        self.job.processed += 1
        self.job.heartbeat_at = utcnow()
        self.session.commit()
        if self.replaced:
            delete_keys(self.storage, self.replaced)
            self.replaced = []

    def _fail(self, key: str, message: str) -> None:
        self.job.failed += 1
        if len(self.job.errors) < MAX_ERRORS:
            # A new list, so SQLAlchemy sees the JSON column change.
            self.job.errors = [*self.job.errors, {"key": key, "message": message}]

    def _fetch(self, client: SourceClient, item: Listed, row: SourceObject) -> None:
        if item.size > settings.max_upload_bytes:
            self._reject(item, row, f"{format_bytes(item.size)} is over the upload limit of "
                                    f"{format_bytes(settings.max_upload_bytes)}")
            return
        try:
            data: bytes = self.retry(lambda: client.read(item.key))
        except SourceError as exc:
            # Not recorded in the cursor: the next sync tries again.
            if row.id is None:
                self.session.expunge(row)
                del self.cursor[item.key]
            self._fail(item.key, str(exc) if not isinstance(exc, TransientSourceError)
                       else f"{exc} (gave up after retrying)")
            return
        try:
            info, thumbnail = process_image(data, filename=item.key,
                                            max_pixels=settings.max_image_pixels,
                                            thumb_size=settings.thumbnail_size)
        except RejectedFile as rejected:
            self._reject(item, row, rejected.reason)
            return
        project_id = self.source.project_id
        previous = self.session.get(Asset, row.asset_id) if row.asset_id else None
        same = self.session.scalar(select(Asset).where(Asset.project_id == project_id,
                                                       Asset.sha256 == info.sha256))
        key, thumb = asset_key(project_id, info.sha256, info.format), thumb_key(project_id,
                                                                                 info.sha256)
        if same is None:
            self.storage.put(key, data, info.mime)
            self.storage.put(thumb, thumbnail, "image/jpeg")
        if same is not None:
            if previous is None or same.id != previous.id:  # else: new etag, same bytes
                row.asset_id = same.id
                self.job.duplicates += 1
        elif previous is not None:
            self.replaced = [k for k in (previous.storage_key, previous.thumb_key) if k]
            previous.storage_key, previous.thumb_key, previous.sha256 = key, thumb, info.sha256
            previous.width, previous.height = info.width, info.height
            previous.mime, previous.bytes = info.mime, info.bytes
            previous.updated_at = utcnow()
            self.job.updated += 1
        else:
            now = utcnow()
            inserted = insert_assets(self.session, [{
                "project_id": project_id, "storage_key": key, "thumb_key": thumb,
                "original_filename": item.key[-512:], "sha256": info.sha256,
                "width": info.width, "height": info.height, "mime": info.mime,
                "bytes": info.bytes, "source_id": self.source.id, "split": "auto",
                "review_state": "unlabeled", "created_at": now, "updated_at": now,
            }])
            if inserted:
                row.asset_id = inserted[info.sha256]
                self.job.imported += 1
            else:  # a concurrent upload committed the same bytes first
                row.asset_id = self.session.scalar(select(Asset.id).where(
                    Asset.project_id == project_id, Asset.sha256 == info.sha256))
                self.job.duplicates += 1
        row.etag, row.size, row.last_modified = item.etag, item.size, item.last_modified
        row.error, row.removed_at = None, None

    def _reject(self, item: Listed, row: SourceObject, reason: str) -> None:
        # Recorded with its etag: the same bytes are not fetched again, a new version is.
        row.etag, row.size, row.last_modified = item.etag, item.size, item.last_modified
        row.error, row.removed_at = reason, None
        self._fail(item.key, reason)

    def record_removals(self, listed: set[str]) -> None:
        """Mark keys gone from the listing; delete their assets if the source says so."""
        now = utcnow()
        gone = [row for key, row in self.cursor.items()
                if key not in listed and row.removed_at is None and row.id is not None]
        for row in gone:
            row.removed_at = now
            self.job.removed += 1
        doomed: list[Asset] = []
        if self.source.remove_missing:
            # An asset stays while any key still listed points at it (same bytes, two keys).
            kept = {row.asset_id for row in self.cursor.values() if row.removed_at is None}
            for asset_id in {row.asset_id for row in gone} - kept - {None}:
                asset = self.session.get(Asset, asset_id)
                if asset is not None:
                    doomed.append(asset)
        keys = [key for asset in doomed for key in (asset.storage_key, asset.thumb_key) if key]
        for asset in doomed:
            self.session.delete(asset)
        self.session.commit()
        delete_keys(self.storage, keys)
