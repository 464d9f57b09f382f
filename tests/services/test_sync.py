"""Source sync against moto's S3 server and Azurite: import, dedupe, change, removal, resume,
retries and permanent errors, with the real SDKs over HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.errors import Conflict, InvalidInput, PermissionDenied
from app.models import Annotation, Asset, Project, SourceObject, StorageSource, SyncJob, Tag, User
from app.services import sources as source_service
from app.services import sync as sync_service
from app.storage.local import LocalBlobStore
from app.storage.sources import SourceClient, TransientSourceError
from app.storage.sources import SourceObject as Listed
from tests.fixtures.cloud import (
    S3_ACCESS_KEY_ID,
    S3_REGION,
    S3_SECRET_ACCESS_KEY,
    s3_client,
)
from tests.fixtures.images import corrupt_jpeg, jpeg

MakeTag = Callable[..., Tag]


class Crash(BaseException):
    """Stands for the worker process dying: nothing in the sync catches it."""


@pytest.fixture
def storage(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs")


@pytest.fixture(autouse=True)
def no_enqueue(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[object, ...]]]:
    """Record enqueued tasks instead of sending them (the Celery round trip is tested apart)."""
    sent: list[tuple[str, tuple[object, ...]]] = []
    def record(name: str, *args: object, **_options: object) -> str:
        sent.append((name, args))
        return "task-id"

    monkeypatch.setattr("app.services.jobs.enqueue", record)
    return sent


@pytest.fixture
def bucket(s3_server: str, s3_bucket: str) -> Iterator[str]:
    yield s3_bucket


def _s3_source(session: Session, project: Project, endpoint: str, bucket: str,
               **options: object) -> StorageSource:
    return source_service.create(
        session=session, project=project, kind="s3", name="field photos",
        config={"bucket": bucket, "region": S3_REGION, "endpoint_url": endpoint},
        secrets={"access_key_id": S3_ACCESS_KEY_ID, "secret_access_key": S3_SECRET_ACCESS_KEY},
        prefix="photos", **options,  # type: ignore[arg-type]
    )


def _put(endpoint: str, bucket: str, objects: dict[str, bytes]) -> None:
    client = s3_client(endpoint)
    for key, data in objects.items():
        client.put_object(Bucket=bucket, Key=key, Body=data)


def _sync(session: Session, source: StorageSource, storage: LocalBlobStore,
          **options: object) -> SyncJob:
    job = sync_service.start_sync(session=session, source=source)
    sync_service.run_sync(job_id=job.id, storage=storage, sleep=lambda _s: None,
                          **options)  # type: ignore[arg-type]
    session.expire_all()
    refreshed = session.get(SyncJob, job.id)
    assert refreshed is not None
    return refreshed


def _count(session: Session, model: type) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def test_secrets_are_encrypted_and_only_hinted(
    session: Session, project: Project, s3_server: str
) -> None:
    source = _s3_source(session, project, s3_server, "b")
    assert S3_SECRET_ACCESS_KEY not in source.secrets_encrypted
    assert source_service.decrypt_secrets(source.secrets_encrypted) == {
        "access_key_id": S3_ACCESS_KEY_ID, "secret_access_key": S3_SECRET_ACCESS_KEY,
    }
    long_secret = "AKIA-super-secret-value-b1c2"
    source_service.update(session=session, source=source,
                          secrets={"secret_access_key": long_secret})
    hints = source_service.secret_hints(source)
    assert hints == {"access_key_id": "••••", "secret_access_key": "••••b1c2"}
    with pytest.raises(InvalidInput, match="both the access key id and the secret"):
        source_service.update(session=session, source=source, secrets={"access_key_id": ""})


def test_sources_are_checked(session: Session, project: Project, user: User) -> None:
    with pytest.raises(InvalidInput, match="an S3 source needs a bucket"):
        source_service.create(session=session, project=project, kind="s3", name="", config={})
    with pytest.raises(InvalidInput, match="endpoint_url 'ftp://x' must be an http"):
        source_service.create(session=session, project=project, kind="s3", name="",
                              config={"bucket": "b", "endpoint_url": "ftp://x"})
    with pytest.raises(InvalidInput, match="must not carry credentials"):
        source_service.create(session=session, project=project, kind="azure", name="",
                              config={"container": "c",
                                      "account_url": "https://a.blob.core.windows.net/?sig=x"})
    with pytest.raises(InvalidInput, match="connection string or an account URL"):
        source_service.create(session=session, project=project, kind="azure", name="",
                              config={"container": "c"})
    with pytest.raises(InvalidInput, match="unknown secret 'password'"):
        source_service.create(session=session, project=project, kind="azure", name="",
                              config={"container": "c"}, secrets={"password": "x"})
    with pytest.raises(PermissionDenied):
        source_service.create(session=session, project=project, kind="folder", name="",
                              config={"path": "/etc"})
    folder = source_service.create(session=session, project=project, kind="folder", name="",
                                   config={"path": "/srv/images"}, user=user)
    assert folder.name == "/srv/images"


def test_first_sync_imports_and_dedupes(
    session: Session, project: Project, storage: LocalBlobStore, s3_server: str, bucket: str
) -> None:
    _put(s3_server, bucket, {
        "photos/a.jpg": jpeg(1), "photos/sub/b.png": jpeg(2), "photos/copy-of-a.jpg": jpeg(1),
        "photos/broken.jpg": corrupt_jpeg(), "photos/notes.txt": b"not an image",
        "elsewhere/c.jpg": jpeg(3),
    })
    source = _s3_source(session, project, s3_server, bucket)
    job = _sync(session, source, storage)
    assert job.status == "succeeded", job.error
    assert (job.total, job.processed, job.imported, job.duplicates, job.failed) == (4, 4, 2, 1, 1)
    assert job.errors[0]["key"] == "broken.jpg"
    assert job.errors[0]["message"].startswith("corrupt image")
    assets = {a.original_filename: a for a in session.scalars(select(Asset))}
    assert set(assets) == {"a.jpg", "sub/b.png"}
    assert all(a.source_id == source.id for a in assets.values())
    links = dict(session.execute(select(SourceObject.key, SourceObject.asset_id)).all())
    assert links["copy-of-a.jpg"] == links["a.jpg"] == assets["a.jpg"].id
    assert storage.read_bytes(assets["a.jpg"].storage_key) == jpeg(1)
    assert source.last_sync_at is not None

    again = _sync(session, source, storage)
    assert (again.processed, again.imported, again.duplicates, again.failed) == (4, 0, 0, 0)
    assert _count(session, Asset) == 2


def test_changed_objects_update_their_asset_in_place(
    session: Session, project: Project, storage: LocalBlobStore, s3_server: str, bucket: str,
    make_tag: MakeTag,
) -> None:
    _put(s3_server, bucket, {"photos/a.jpg": jpeg(1)})
    source = _s3_source(session, project, s3_server, bucket)
    _sync(session, source, storage)
    asset = session.scalars(select(Asset)).one()
    old_key, tag = asset.storage_key, make_tag("weed")
    session.add(Annotation(asset_id=asset.id, tag_id=tag.id))
    session.commit()
    _put(s3_server, bucket, {"photos/a.jpg": jpeg(7, (80, 60))})
    job = _sync(session, source, storage)
    assert (job.updated, job.imported) == (1, 0)
    session.refresh(asset)
    assert (asset.width, asset.height) == (80, 60)
    assert storage.read_bytes(asset.storage_key) == jpeg(7, (80, 60))
    assert not storage.exists(old_key)
    assert session.scalar(select(Annotation.tag_id)) == tag.id
    assert _count(session, Asset) == 1


def test_removed_objects_are_reported_and_optionally_removed(
    session: Session, project: Project, storage: LocalBlobStore, s3_server: str, bucket: str
) -> None:
    _put(s3_server, bucket, {"photos/a.jpg": jpeg(1), "photos/b.jpg": jpeg(2)})
    source = _s3_source(session, project, s3_server, bucket)
    _sync(session, source, storage)
    s3_client(s3_server).delete_object(Bucket=bucket, Key="photos/a.jpg")
    job = _sync(session, source, storage)
    assert job.removed == 1
    assert sync_service.removed_keys(session=session, job=job) == ["a.jpg"]
    assert _count(session, Asset) == 2  # reported, kept

    source_service.update(session=session, source=source, remove_missing=True)
    s3_client(s3_server).delete_object(Bucket=bucket, Key="photos/b.jpg")
    job = _sync(session, source, storage)
    assert job.removed == 1
    assert [a.original_filename for a in session.scalars(select(Asset))] == ["a.jpg"]
    # A removed object that comes back is imported again.
    _put(s3_server, bucket, {"photos/b.jpg": jpeg(2)})
    job = _sync(session, source, storage)
    assert job.imported == 1 and _count(session, Asset) == 2


def test_a_deleted_asset_is_not_imported_again(
    session: Session, project: Project, storage: LocalBlobStore, s3_server: str, bucket: str
) -> None:
    from app.services import assets as asset_service

    _put(s3_server, bucket, {"photos/a.jpg": jpeg(1)})
    source = _s3_source(session, project, s3_server, bucket)
    _sync(session, source, storage)
    asset = session.scalars(select(Asset)).one()
    asset_service.delete(session=session, storage=storage, asset=asset)
    job = _sync(session, source, storage)
    assert (job.imported, _count(session, Asset)) == (0, 0)


class FaultyClient:
    """A real client with injected faults: transient read errors, or a crash after N reads."""

    def __init__(self, inner: SourceClient, *, crash_after: int | None = None,
                 flaky_reads: int = 0) -> None:
        self.inner, self.crash_after, self.flaky_reads = inner, crash_after, flaky_reads
        self.reads: list[str] = []

    def list(self, prefix: str = "") -> Iterator[Listed]:
        return self.inner.list(prefix)

    def read(self, key: str) -> bytes:
        if self.flaky_reads:
            self.flaky_reads -= 1
            raise TransientSourceError("bucket 'x' is temporarily unavailable (SlowDown)")
        if self.crash_after is not None and len(self.reads) >= self.crash_after:
            raise Crash()
        self.reads.append(key)
        return self.inner.read(key)


def test_a_sync_that_dies_resumes_without_importing_twice(
    session: Session, project: Project, storage: LocalBlobStore, s3_server: str, bucket: str
) -> None:
    _put(s3_server, bucket, {f"photos/{i}.jpg": jpeg(i) for i in range(6)})
    source = _s3_source(session, project, s3_server, bucket)
    job = sync_service.start_sync(session=session, source=source)
    first = FaultyClient(source_service.open_client(source), crash_after=4)
    with pytest.raises(Crash):
        sync_service.run_sync(job_id=job.id, storage=storage,
                              open_client=lambda _source: first)
    session.expire_all()
    assert session.get(SyncJob, job.id).status == "running"  # type: ignore[union-attr]
    assert _count(session, Asset) == 4
    # A redelivered task leaves a job alone while its heartbeat is fresh...
    assert sync_service.run_sync(job_id=job.id, storage=storage) == "skipped"
    # ...and resumes it once the heartbeat is stale.
    second = FaultyClient(source_service.open_client(source))
    status = sync_service.run_sync(job_id=job.id, storage=storage,
                                   open_client=lambda _source: second, stale_after_s=0)
    assert status == "succeeded"
    assert second.reads == ["4.jpg", "5.jpg"]
    session.expire_all()
    resumed = session.get(SyncJob, job.id)
    assert resumed is not None and (resumed.imported, resumed.processed) == (2, 6)
    assert _count(session, Asset) == 6
    assert _count(session, SourceObject) == 6


def test_a_new_sync_after_a_failure_picks_up_where_it_stopped(
    session: Session, project: Project, storage: LocalBlobStore, s3_server: str, bucket: str
) -> None:
    _put(s3_server, bucket, {f"photos/{i}.jpg": jpeg(i) for i in range(4)})
    source = _s3_source(session, project, s3_server, bucket)
    job = sync_service.start_sync(session=session, source=source)
    broken = FaultyClient(source_service.open_client(source), crash_after=2)
    with pytest.raises(Crash):
        sync_service.run_sync(job_id=job.id, storage=storage, open_client=lambda _s: broken)
    with pytest.raises(Conflict, match="already syncing"):
        sync_service.start_sync(session=session, source=source)
    session.expire_all()
    stale = session.get(SyncJob, job.id)
    assert stale is not None
    assert stale.heartbeat_at is not None
    stale.heartbeat_at = stale.heartbeat_at - timedelta(hours=1)
    session.commit()
    fresh = _sync(session, source, storage)
    assert (fresh.status, fresh.imported, fresh.processed) == ("succeeded", 2, 4)
    session.refresh(stale)
    assert stale.status == "failed" and "stopped responding" in (stale.error or "")
    assert _count(session, Asset) == 4


def test_transient_errors_are_retried(
    session: Session, project: Project, storage: LocalBlobStore, s3_server: str, bucket: str
) -> None:
    _put(s3_server, bucket, {"photos/a.jpg": jpeg(1)})
    source = _s3_source(session, project, s3_server, bucket)
    flaky = FaultyClient(source_service.open_client(source), flaky_reads=2)
    job = _sync(session, source, storage, open_client=lambda _s: flaky)
    assert (job.status, job.imported, job.failed) == ("succeeded", 1, 0)
    always = FaultyClient(source_service.open_client(source), flaky_reads=100)
    _put(s3_server, bucket, {"photos/b.jpg": jpeg(2)})
    job = _sync(session, source, storage, open_client=lambda _s: always)
    assert (job.status, job.failed) == ("succeeded", 1)
    assert "gave up after retrying" in job.errors[0]["message"]
    # Not recorded in the cursor, so the next sync tries b.jpg again.
    job = _sync(session, source, storage)
    assert job.imported == 1


def test_a_missing_bucket_fails_plainly(
    session: Session, project: Project, storage: LocalBlobStore, s3_server: str
) -> None:
    source = _s3_source(session, project, s3_server, "no-such-bucket-here")
    job = _sync(session, source, storage)
    assert (job.status, job.error) == ("failed", "bucket 'no-such-bucket-here' does not exist")
    assert job.finished_at is not None


def test_bad_credentials_fail_plainly(
    session: Session, project: Project, storage: LocalBlobStore, azurite_server: str,
    azure_container: str,
) -> None:
    broken = azurite_server.replace("AccountKey=", "AccountKey=AAAA")
    source = source_service.create(
        session=session, project=project, kind="azure", name="",
        config={"container": azure_container}, secrets={"connection_string": broken},
    )
    job = _sync(session, source, storage)
    assert job.status == "failed"
    assert (job.error or "").startswith(f"authentication failed for container '{azure_container}'")


def test_azure_sync(
    session: Session, project: Project, storage: LocalBlobStore, azurite_server: str,
    azure_container: str,
) -> None:
    from azure.storage.blob import BlobServiceClient

    container = BlobServiceClient.from_connection_string(azurite_server).get_container_client(
        azure_container)
    for name, data in {"in/a.jpg": jpeg(1), "in/b.jpg": jpeg(2), "out/c.jpg": jpeg(3)}.items():
        container.upload_blob(name, data)
    source = source_service.create(
        session=session, project=project, kind="azure", name="blobs",
        config={"container": azure_container}, secrets={"connection_string": azurite_server},
        prefix="in/",
    )
    job = _sync(session, source, storage)
    assert (job.status, job.imported) == ("succeeded", 2), job.error
    container.upload_blob("in/a.jpg", jpeg(9), overwrite=True)
    container.delete_blob("in/b.jpg")
    job = _sync(session, source, storage)
    assert (job.updated, job.removed, job.imported) == (1, 1, 0)
    assert sorted(session.scalars(select(Asset.original_filename))) == ["a.jpg", "b.jpg"]


def test_an_asset_stays_while_another_key_still_has_its_bytes(
    session: Session, project: Project, storage: LocalBlobStore, s3_server: str, bucket: str
) -> None:
    _put(s3_server, bucket, {"photos/a.jpg": jpeg(1), "photos/copy.jpg": jpeg(1)})
    source = _s3_source(session, project, s3_server, bucket, remove_missing=True)
    assert _sync(session, source, storage).duplicates == 1
    s3_client(s3_server).delete_object(Bucket=bucket, Key="photos/a.jpg")
    job = _sync(session, source, storage)
    assert job.removed == 1
    assert _count(session, Asset) == 1
    s3_client(s3_server).delete_object(Bucket=bucket, Key="photos/copy.jpg")
    _sync(session, source, storage)
    assert _count(session, Asset) == 0
    assert list(storage.list("")) == []
