"""/api/v1/projects/{id}/exports/labels: one-hot CSV and JSON, readable back by the importers."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.imports.csv_labels import read_csv
from app.models import Annotation, Asset, Project, Tag
from app.services import assets as asset_service
from app.services.assets import as_upload
from app.storage.local import LocalBlobStore
from tests.fixtures.images import jpeg

MakeTag = Callable[..., Tag]


def _arrange(session: Session, project: Project, tmp_path: Path, make_tag: MakeTag) -> None:
    cat, dog = make_tag("cat"), make_tag("dog")
    make_tag("old")
    report = asset_service.ingest_uploads(
        session=session, storage=LocalBlobStore(tmp_path), project=project,
        uploads=[as_upload(name, jpeg(i)) for i, name in enumerate(["a.jpg", "b.jpg", "c.jpg"])],
    )
    a, b, c = (session.get(Asset, r.asset_id) for r in report.results)
    assert a and b and c
    session.add_all([Annotation(asset_id=a.id, tag_id=cat.id),
                     Annotation(asset_id=a.id, tag_id=dog.id)])
    a.review_state, a.split = "labeled", "train"
    b.review_state = "labeled"  # labeled with no tags: none apply
    session.commit()


def test_csv_export(api: TestClient, session: Session, project: Project, tmp_path: Path,
                    make_tag: MakeTag) -> None:
    _arrange(session, project, tmp_path, make_tag)
    response = api.get(f"/api/v1/projects/{project.id}/exports/labels", params={"format": "csv"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert 'filename="Crops-labels.csv"' in response.headers["content-disposition"]
    assert response.text == "filename,cat,dog,old\na.jpg,1,1,0\nb.jpg,0,0,0\n"
    table = read_csv(response.content)
    assert [(r.filename, r.labels) for r in table.rows] == [("a.jpg", ["cat", "dog"]),
                                                            ("b.jpg", [])]


def test_json_export(api: TestClient, session: Session, project: Project, tmp_path: Path,
                     make_tag: MakeTag) -> None:
    _arrange(session, project, tmp_path, make_tag)
    url = f"/api/v1/projects/{project.id}/exports/labels"
    records = json.loads(api.get(url, params={"format": "json"}).content)
    assert records == [
        {"filename": "a.jpg", "labels": ["cat", "dog"], "split": "train"},
        {"filename": "b.jpg", "labels": [], "split": None},
    ]
    everything = json.loads(api.get(url, params={"format": "json",
                                                 "include_unlabeled": True}).content)
    assert [r["filename"] for r in everything] == ["a.jpg", "b.jpg", "c.jpg"]
    assert api.get(url, params={"format": "xml"}).status_code == 422
