"""/api/v1/projects/{id}/assets: multipart uploads, single assets, file and thumbnail bytes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.config import settings
from app.deps import get_blob_store
from app.models import Asset, Project, Tag
from app.storage.local import LocalBlobStore
from tests.fixtures.images import corrupt_jpeg, image_bytes, jpeg, make_zip

MakeTag = Callable[..., Tag]


@pytest.fixture
def storage(client: TestClient, tmp_path: Path) -> LocalBlobStore:
    """A private blob store for the app under test, so leftovers can be counted."""
    store = LocalBlobStore(tmp_path / "blobs")
    client.app.dependency_overrides[get_blob_store] = lambda: store  # type: ignore[attr-defined]
    return store


def _url(project: Project, suffix: str = "") -> str:
    return f"/api/v1/projects/{project.id}/assets{suffix}"


def _files(*pairs: tuple[str, bytes]) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("files", (name, data, "application/octet-stream")) for name, data in pairs]


def test_upload_reports_each_file(
    api: TestClient, storage: LocalBlobStore, project: Project, session: Session, make_tag: MakeTag,
) -> None:
    weed = make_tag("weed")
    archive = make_zip({"z/a.jpg": jpeg(1), "../x.jpg": jpeg(2)})
    response = api.post(
        _url(project),
        files=_files(("one.jpg", jpeg(3)), ("one-copy.jpg", jpeg(3)), ("bad.jpg", corrupt_jpeg()),
                     ("photos.zip", archive)),
        data={"tag_ids": str(weed.id)},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["created"], body["duplicates"], body["rejected"]) == (2, 1, 2)
    rows = [(r["filename"], r["status"], r["archive"]) for r in body["results"]]
    assert rows == [
        ("one.jpg", "created", None), ("one-copy.jpg", "duplicate", None),
        ("bad.jpg", "rejected", None), ("z/a.jpg", "created", "photos.zip"),
        ("../x.jpg", "rejected", "photos.zip"),
    ]
    first = body["results"][0]
    assert body["results"][1]["asset_id"] == first["asset_id"]
    assert first["thumb_url"] == _url(project, f"/{first['asset_id']}/thumb")
    assert body["results"][2]["reason"].startswith("corrupt image")
    detail = api.get(_url(project, f"/{first['asset_id']}")).json()
    assert detail["tag_ids"] == [weed.id]
    assert detail["review_state"] == "labeled"


def test_folder_upload_keeps_relative_paths(
    api: TestClient, storage: LocalBlobStore, project: Project
) -> None:
    response = api.post(_url(project), files=_files(("field 1/row 2/img.jpg", jpeg(4))))
    [result] = response.json()["results"]
    assert result["filename"] == "field 1/row 2/img.jpg"


def test_an_oversized_file_is_cut_off_while_others_go_in(
    api: TestClient, storage: LocalBlobStore, project: Project, session: Session,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(settings, "max_upload_bytes", 50_000)
    big = image_bytes((1, 1, 1), (900, 900), "PNG") + b"\0" * 60_000
    response = api.post(_url(project), files=_files(("big.png", big), ("small.jpg", jpeg(5))))
    body = response.json()
    assert [(r["filename"], r["status"]) for r in body["results"]] == [
        ("big.png", "rejected"), ("small.jpg", "created"),
    ]
    assert body["results"][0]["reason"] == "file is larger than the upload limit of 48.8 KB"
    assert session.scalar(select(func.count()).select_from(Asset)) == 1
    assert len(list(storage.list(""))) == 2


def test_a_request_over_the_total_limit_is_refused(
    api: TestClient, storage: LocalBlobStore, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "max_zip_bytes", 10_000)
    monkeypatch.setattr("app.api.assets.REQUEST_OVERHEAD", 0)
    response = api.post(_url(project), files=_files(("a.jpg", b"x" * 20_000)))
    assert response.status_code == 413
    assert "send the files in smaller batches" in response.json()["detail"]


def test_bad_requests(api: TestClient, storage: LocalBlobStore, project: Project) -> None:
    assert api.post(_url(project), data={"tag_ids": "1"}).status_code == 422
    response = api.post(_url(project), files=_files(("a.jpg", jpeg(6))), data={"tag_ids": "x"})
    assert response.status_code == 422
    assert response.json()["detail"] == "tag_ids: 'x' is not a tag id"
    response = api.post(_url(project), files=_files(("a.jpg", jpeg(6))), data={"tag_ids": "77"})
    assert response.json()["detail"] == "tag 77 is not in project 'Crops'"
    assert list(storage.list("")) == []


def test_file_and_thumbnail_bytes(
    api: TestClient, storage: LocalBlobStore, project: Project
) -> None:
    data = image_bytes((5, 100, 5), (400, 300), "PNG")
    [result] = api.post(_url(project), files=_files(("leaf.png", data))).json()["results"]
    file = api.get(_url(project, f"/{result['asset_id']}/file"))
    assert file.status_code == 200
    assert file.content == data
    assert file.headers["content-type"] == "image/png"
    assert file.headers["cache-control"] == "private, max-age=86400"
    assert "leaf.png" in file.headers["content-disposition"]
    again = api.get(_url(project, f"/{result['asset_id']}/file"),
                    headers={"If-None-Match": file.headers["etag"]})
    assert again.status_code == 304
    thumb = api.get(_url(project, f"/{result['asset_id']}/thumb"))
    assert thumb.headers["content-type"] == "image/jpeg"
    assert thumb.content[:2] == b"\xff\xd8"
    assert thumb.headers["etag"] != file.headers["etag"]


def test_bytes_need_authentication(
    client: TestClient, api_key: str, storage: LocalBlobStore, project: Project
) -> None:
    headers = {"Authorization": f"Bearer {api_key}"}
    response = client.post(_url(project), files=_files(("a.jpg", jpeg(7))), headers=headers)
    asset_id = response.json()["results"][0]["asset_id"]
    assert client.get(_url(project, f"/{asset_id}/file")).status_code == 401
    assert client.get(_url(project, f"/{asset_id}/thumb")).status_code == 401
    assert client.post(_url(project), files=_files(("b.jpg", jpeg(8)))).status_code == 401


def test_patch_split_and_delete(
    api: TestClient, storage: LocalBlobStore, project: Project, session: Session
) -> None:
    [result] = api.post(_url(project), files=_files(("a.jpg", jpeg(9)))).json()["results"]
    url = _url(project, f"/{result['asset_id']}")
    assert api.patch(url, json={"split": "test"}).json()["split"] == "test"
    assert api.patch(url, json={"split": "holdout"}).status_code == 422
    assert api.delete(url).status_code == 204
    assert api.get(url).status_code == 404
    assert api.get(f"{url}/file").status_code == 404
    assert list(storage.list("")) == []


def test_an_asset_of_another_project_is_not_found(
    api: TestClient, storage: LocalBlobStore, project: Project
) -> None:
    other = api.post("/api/v1/projects", json={"name": "Other"}).json()
    [result] = api.post(_url(project), files=_files(("a.jpg", jpeg(10)))).json()["results"]
    response = api.get(f"/api/v1/projects/{other['id']}/assets/{result['asset_id']}")
    assert response.status_code == 404
    assert response.json()["detail"] == f"image {result['asset_id']} not found in project 'Other'"
