"""/api/v1/projects/{id}/sources: CRUD without ever returning secrets, sync jobs and progress."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.deps import get_blob_store
from app.models import Project, SyncJob
from app.services import sync as sync_service
from tests.fixtures.cloud import S3_ACCESS_KEY_ID, S3_REGION, S3_SECRET_ACCESS_KEY, s3_client
from tests.fixtures.images import jpeg

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[object, ...]]]:
    calls: list[tuple[str, tuple[object, ...]]] = []
    def record(name: str, *args: object, **_options: object) -> str:
        calls.append((name, args))
        return "id"

    monkeypatch.setattr("app.services.jobs.enqueue", record)
    return calls


def _back_to_queued(session: Session, job_id: int) -> None:
    job = session.get(SyncJob, job_id)
    assert job is not None
    session.refresh(job)
    job.status = "queued"
    session.commit()


def _url(project: Project, suffix: str = "") -> str:
    return f"/api/v1/projects/{project.id}/sources{suffix}"


def test_secrets_never_come_back(api: TestClient, project: Project) -> None:
    created = api.post(_url(project), json={
        "kind": "s3", "name": "Field cams", "prefix": "/cams/",
        "settings": {"bucket": "photos", "region": "eu-west-1"},
        "secrets": {"access_key_id": "AKIAEXAMPLE", "secret_access_key": SECRET},
    })
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["secret_hints"] == {"access_key_id": "••••", "secret_access_key": "••••EKEY"}
    assert body["settings"] == {"bucket": "photos", "region": "eu-west-1"}
    assert body["prefix"] == "cams"
    assert body["last_job"] is None
    for response in (created, api.get(_url(project)), api.get(_url(project, f"/{body['id']}"))):
        assert SECRET not in response.text and "AKIAEXAMPLE" not in response.text
    patched = api.patch(_url(project, f"/{body['id']}"),
                        json={"name": "Cams", "settings": {"region": None}})
    assert patched.json()["name"] == "Cams"
    assert patched.json()["settings"] == {"bucket": "photos"}
    assert patched.json()["secret_hints"]["secret_access_key"] == "••••EKEY"
    assert api.delete(_url(project, f"/{body['id']}")).status_code == 204
    assert api.get(_url(project, f"/{body['id']}")).status_code == 404


def test_invalid_sources_are_refused(api: TestClient, project: Project) -> None:
    response = api.post(_url(project), json={"kind": "s3", "settings": {}})
    assert (response.status_code, response.json()["detail"]) == (
        422, "an S3 source needs a bucket")
    response = api.post(_url(project), json={"kind": "gcs", "settings": {"bucket": "b"}})
    assert response.status_code == 422


def test_sync_is_accepted_and_reports_progress(
    api: TestClient, project: Project, sent: list[tuple[str, tuple[object, ...]]],
    s3_server: str, s3_bucket: str, session: Session,
) -> None:
    s3_client(s3_server).put_object(Bucket=s3_bucket, Key="a.jpg", Body=jpeg(1))
    source = api.post(_url(project), json={
        "kind": "s3", "settings": {"bucket": s3_bucket, "region": S3_REGION,
                                   "endpoint_url": s3_server},
        "secrets": {"access_key_id": S3_ACCESS_KEY_ID, "secret_access_key": S3_SECRET_ACCESS_KEY},
    }).json()
    response = api.post(_url(project, f"/{source['id']}/sync"))
    assert response.status_code == 202
    job = response.json()
    assert job["status"] == "queued"
    assert sent == [("sync.run", (job["id"],))]
    # Still queued: the same job is sent again, not doubled.
    again = api.post(_url(project, f"/{source['id']}/sync"))
    assert (again.status_code, again.json()["id"]) == (202, job["id"])
    assert sent == [("sync.run", (job["id"],))] * 2
    sync_service.claim(session=session, job_id=job["id"], stale_after_s=60)
    busy = api.post(_url(project, f"/{source['id']}/sync"))
    assert busy.status_code == 409
    assert busy.json()["details"] == {"job_id": job["id"]}
    assert sync_service.run_sync(job_id=job["id"], storage=get_blob_store()) == "skipped"
    _back_to_queued(session, job["id"])
    # What the worker would do with the enqueued id:
    sync_service.run_sync(job_id=job["id"], storage=get_blob_store())
    done = api.get(_url(project, f"/{source['id']}/sync-jobs/{job['id']}")).json()
    assert (done["status"], done["total"], done["processed"], done["imported"]) == (
        "succeeded", 1, 1, 1)
    listed = api.get(_url(project, f"/{source['id']}/sync-jobs")).json()
    assert [j["id"] for j in listed] == [job["id"]]
    assert api.get(_url(project, f"/{source['id']}")).json()["last_job"]["status"] == "succeeded"
    assert api.get(_url(project, f"/{source['id']}/sync-jobs/999")).status_code == 404


def test_a_failed_sync_says_why(
    api: TestClient, project: Project, sent: list[tuple[str, tuple[object, ...]]],
    s3_server: str,
) -> None:
    source = api.post(_url(project), json={
        "kind": "s3", "settings": {"bucket": "gone-bucket", "endpoint_url": s3_server,
                                   "region": S3_REGION},
        "secrets": {"access_key_id": S3_ACCESS_KEY_ID, "secret_access_key": S3_SECRET_ACCESS_KEY},
    }).json()
    job = api.post(_url(project, f"/{source['id']}/sync")).json()
    sync_service.run_sync(job_id=job["id"], storage=get_blob_store())
    done = api.get(_url(project, f"/{source['id']}/sync-jobs/{job['id']}")).json()
    assert (done["status"], done["error"]) == ("failed", "bucket 'gone-bucket' does not exist")


def test_folder_sources_need_an_admin(
    client: TestClient, session: Session, project: Project
) -> None:
    from app.services import api_keys as api_key_service
    from app.services import users as user_service

    member = user_service.create(session=session, email="member@example.com",
                                 password="correct horse battery", is_admin=False)
    _row, key = api_key_service.create(session=session, user=member, name="t")
    response = client.post(_url(project), json={"kind": "folder", "settings": {"path": "/etc"}},
                           headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 403
