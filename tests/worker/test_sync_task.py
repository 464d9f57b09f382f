"""The sync task round-trips through the real broker and a real worker process."""

from __future__ import annotations

import subprocess
import time

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.deps import get_blob_store
from app.models import Asset, Project, SyncJob
from app.services import sources as source_service
from app.services import sync as sync_service
from tests.fixtures.cloud import S3_ACCESS_KEY_ID, S3_REGION, S3_SECRET_ACCESS_KEY, s3_client
from tests.fixtures.images import jpeg


def _wait_for(session: Session, job_id: int, timeout: float = 90) -> SyncJob:
    deadline = time.monotonic() + timeout
    status = "missing"
    while time.monotonic() < deadline:
        session.expire_all()
        job = session.get(SyncJob, job_id)
        assert job is not None
        if job.status in ("succeeded", "failed"):
            return job
        status = job.status
        time.sleep(0.3)
    raise AssertionError(f"sync job {job_id} still {status} after {timeout}s")


def test_sync_runs_on_the_worker(
    celery_worker: subprocess.Popen[bytes], session: Session, project: Project,
    s3_server: str, s3_bucket: str,
) -> None:
    client = s3_client(s3_server)
    for index in range(3):
        client.put_object(Bucket=s3_bucket, Key=f"cam/{index}.jpg", Body=jpeg(index))
    source = source_service.create(
        session=session, project=project, kind="s3", name="cam",
        config={"bucket": s3_bucket, "region": S3_REGION, "endpoint_url": s3_server},
        secrets={"access_key_id": S3_ACCESS_KEY_ID, "secret_access_key": S3_SECRET_ACCESS_KEY},
        prefix="cam",
    )
    job = sync_service.start_sync(session=session, source=source)
    done = _wait_for(session, job.id)
    assert (done.status, done.imported, done.processed) == ("succeeded", 3, 3), done.error
    assert done.heartbeat_at is not None and done.finished_at is not None
    assets = list(session.scalars(select(Asset).order_by(Asset.original_filename)))
    assert [a.original_filename for a in assets] == ["0.jpg", "1.jpg", "2.jpg"]
    # The worker wrote to the same storage the api reads.
    assert get_blob_store().read_bytes(assets[0].storage_key) == jpeg(0)
    assert celery_worker.poll() is None
