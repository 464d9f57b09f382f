"""/api/v1/projects/{id}/label-imports: upload, preview, re-preview, confirm, discard."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.config import settings
from app.deps import get_blob_store
from app.models import Annotation, Asset, Project, Tag
from app.storage.local import LocalBlobStore
from tests.fixtures.images import jpeg, make_zip


@pytest.fixture
def storage(client: TestClient, tmp_path: Path) -> LocalBlobStore:
    store = LocalBlobStore(tmp_path / "blobs")
    client.app.dependency_overrides[get_blob_store] = lambda: store  # type: ignore[attr-defined]
    return store


def _url(project: Project, suffix: str = "") -> str:
    return f"/api/v1/projects/{project.id}/label-imports{suffix}"


def _start(api: TestClient, project: Project, format: str, name: str, data: bytes,
           **fields: str | list[str]) -> dict[str, Any]:
    response = api.post(_url(project), data={"format": format, **fields},
                        files={"file": (name, data, "application/octet-stream")})
    assert response.status_code in (201, 413, 422), response.text
    return {"status": response.status_code, **response.json()}


def test_csv_preview_then_confirm(
    api: TestClient, storage: LocalBlobStore, project: Project, session: Session
) -> None:
    api.post(f"/api/v1/projects/{project.id}/assets",
             files=[("files", ("a.jpg", jpeg(1), "image/jpeg")),
                    ("files", ("b.jpg", jpeg(2), "image/jpeg"))])
    preview = _start(api, project, "csv", "labels.csv", b"a.jpg,cat\nb.jpg,dog,cat\nz.jpg,cat\n")
    assert preview["status"] == 201
    assert (preview["matched_count"], preview["unmatched"], preview["new_tags"]) == (
        2, ["z.jpg"], ["cat", "dog"])
    assert preview["matched"][1] == {"row": 2, "filename": "b.jpg", "asset_id":
                                     preview["matched"][1]["asset_id"], "labels": ["dog", "cat"],
                                     "split": None}
    assert preview["can_confirm"] is True
    assert session.scalar(select(func.count()).select_from(Tag)) == 0
    result = api.post(_url(project, f"/{preview['import_id']}/confirm"), json={})
    assert result.status_code == 200, result.text
    assert result.json() == {"labeled": 2, "annotations": 3, "tags_created": ["cat", "dog"],
                             "images_created": 0, "images_duplicate": 0}
    sources = set(session.scalars(select(Annotation.source)))
    assert sources == {"import"}
    again = api.post(_url(project, f"/{preview['import_id']}/confirm"), json={})
    assert again.status_code == 404


def test_errors_block_confirm_with_row_numbers(
    api: TestClient, storage: LocalBlobStore, project: Project
) -> None:
    api.post(f"/api/v1/projects/{project.id}/assets",
             files=[("files", ("a.jpg", jpeg(1), "image/jpeg"))])
    preview = _start(api, project, "csv", "l.csv", b"filename,cat\na.jpg,1\na.jpg,0\n")
    assert preview["errors"] == [{"row": 3, "message": "duplicate file name 'a.jpg' (also in "
                                                       "row 2); list each image once"}]
    assert preview["can_confirm"] is False
    response = api.post(_url(project, f"/{preview['import_id']}/confirm"), json={})
    assert response.status_code == 422
    assert response.json()["details"][0]["row"] == 3


def test_index_zip_and_coco_categories(
    api: TestClient, storage: LocalBlobStore, project: Project, session: Session
) -> None:
    archive = make_zip({"index.csv": b"path,cat\na.jpg,1\nb.jpg,0\n", "a.jpg": jpeg(1),
                        "b.jpg": jpeg(2)})
    preview = _start(api, project, "index_zip", "set.zip", archive)
    assert preview["matched_count"] == 2 and preview["matched"][0]["asset_id"] is None
    result = api.post(_url(project, f"/{preview['import_id']}/confirm"), json={}).json()
    assert (result["images_created"], result["labeled"]) == (2, 2)
    coco = json.dumps({
        "images": [{"id": 1, "file_name": "a.jpg"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 2}],
        "categories": [{"id": 1, "name": "car"}, {"id": 2, "name": "cat"}],
    }).encode()
    preview = _start(api, project, "coco", "instances.json", coco, categories=["cat"])
    assert preview["selected_categories"] == ["cat"]
    assert [c["name"] for c in preview["categories"]] == ["car", "cat"]
    again = api.post(_url(project, f"/{preview['import_id']}/preview"),
                     json={"categories": ["car"]}).json()
    assert again["new_tags"] == ["car"] and again["matched"][0]["labels"] == []
    assert api.delete(_url(project, f"/{preview['import_id']}")).status_code == 204
    assert api.post(_url(project, f"/{preview['import_id']}/preview"), json={}).status_code == 404
    assert session.scalar(select(func.count()).select_from(Asset)) == 2


def test_bad_uploads(
    api: TestClient, storage: LocalBlobStore, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _start(api, project, "yaml", "x.yaml", b"")["detail"].startswith("format: choose")
    bad = _start(api, project, "label_studio", "x.json", b"{}")
    assert bad["detail"] == "x.json: not a Label Studio export: expected a JSON list of tasks"
    monkeypatch.setattr(settings, "max_upload_bytes", 1000)
    big = _start(api, project, "csv", "big.csv", b"a.jpg,cat\n" * 200)
    assert big["status"] == 413
    assert big["detail"] == "big.csv: file is larger than the upload limit of 1000 bytes"
    assert list(storage.list("")) == []
