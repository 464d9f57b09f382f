"""The prediction REST API on real images with real API keys, every bad input, and batch jobs."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.config import settings
from app.deps import get_blob_store
from app.inference.sessions import OnnxModel, models
from app.models import Deployment, Project
from tests.fixtures.evaluated import (
    EvaluatedRun,
    create_evaluated_run,
    image_bytes,
    make_live_deployment,
    onnx_bytes,
)

THRESHOLDS = [0.5, 0.3, 0.7]


@pytest.fixture(autouse=True)
def _fresh_models() -> Iterator[None]:
    yield
    models.clear()


@pytest.fixture
def evaluated(session: Session, project: Project, make_tag) -> EvaluatedRun:  # type: ignore[no-untyped-def]
    tags = [make_tag("apple"), make_tag("pear"), make_tag("plum")]
    return create_evaluated_run(session, project, tags, real_checkpoints=False)


@pytest.fixture
def deployment(session: Session, evaluated: EvaluatedRun) -> Deployment:
    return make_live_deployment(session, evaluated, thresholds=THRESHOLDS)


def _files(*images: tuple[str, bytes]) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("files", (name, data, "application/octet-stream")) for name, data in images]


def _expected_scores(evaluated: EvaluatedRun, images: list[bytes]) -> np.ndarray:
    model = OnnxModel(onnx_bytes(evaluated.label_keys, 0))
    try:
        return model.predict(images)
    finally:
        model.close()


def test_predict_many_images(
    api: TestClient, deployment: Deployment, evaluated: EvaluatedRun
) -> None:
    images = [image_bytes(1), image_bytes(2, (300, 200), "JPEG"), image_bytes(3)]
    response = api.post(
        f"/api/v1/deployments/{deployment.id}/predict",
        files=_files(("a.png", images[0]), ("b.jpg", images[1]), ("c.png", images[2])),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["deployment_id"], body["version"]) == (deployment.id, 1)
    assert [image["file"] for image in body["images"]] == ["a.png", "b.jpg", "c.png"]
    expected = _expected_scores(evaluated, images)
    for row, image in zip(expected, body["images"], strict=True):
        by_name = {tag["name"]: tag for tag in image["tags"]}
        assert set(by_name) == {"apple", "pear", "plum"}
        scores = [tag["score"] for tag in image["tags"]]
        assert scores == sorted(scores, reverse=True)
        for index, name in enumerate(("apple", "pear", "plum")):
            tag = by_name[name]
            assert tag["score"] == pytest.approx(float(row[index]), abs=1e-6)
            assert tag["threshold"] == THRESHOLDS[index]
            assert tag["predicted"] == (tag["score"] >= THRESHOLDS[index])
            assert tag["tag_id"] == evaluated.tags[index].id
        assert image["predicted"] == [t["name"] for t in image["tags"] if t["predicted"]]
    # Concurrent-request batching must not mix images up: scores differ between images.
    assert len({round(image["tags"][0]["score"], 6) for image in body["images"]}) > 1


def test_threshold_override_and_top_k(api: TestClient, deployment: Deployment) -> None:
    url = f"/api/v1/deployments/{deployment.id}/predict"
    files = _files(("a.png", image_bytes(1)))
    everything = api.post(url, files=files, data={"thresholds": "0"}).json()["images"][0]
    assert all(tag["predicted"] and tag["threshold"] == 0 for tag in everything["tags"])
    nothing = api.post(url, files=files, data={"thresholds": "1"}).json()["images"][0]
    assert nothing["predicted"] == [] or all(t["score"] >= 1 for t in nothing["tags"])
    per_tag = api.post(url, files=files, data={"thresholds": json.dumps({"Pear": 0.0})})
    tags = {tag["name"]: tag for tag in per_tag.json()["images"][0]["tags"]}
    assert tags["pear"]["threshold"] == 0 and tags["pear"]["predicted"]
    assert tags["apple"]["threshold"] == THRESHOLDS[0]
    top = api.post(url, files=files, data={"top_k": "1"}).json()["images"][0]
    assert len(top["tags"]) == 1
    assert top["tags"][0]["score"] == max(t["score"] for t in everything["tags"])


def test_project_predict_uses_the_default_deployment(
    api: TestClient, session: Session, evaluated: EvaluatedRun, deployment: Deployment
) -> None:
    other = make_live_deployment(session, evaluated, is_default=False, name="other")
    response = api.post(
        f"/api/v1/projects/{evaluated.project.id}/predict", files=_files(("a.png", image_bytes(4)))
    )
    assert response.status_code == 200, response.text
    assert response.json()["deployment_id"] == deployment.id != other.id


def _error(response) -> str:  # type: ignore[no-untyped-def]
    return str(response.json()["detail"])


def test_bad_inputs_are_4xx_that_name_the_problem(
    api: TestClient, deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"/api/v1/deployments/{deployment.id}/predict"
    good = ("ok.png", image_bytes(1))

    response = api.post(url, files=_files(good, ("notes.txt", b"hello, not an image")))
    assert response.status_code == 422
    assert "'notes.txt' is not an image" in _error(response)

    truncated = image_bytes(2, (300, 200), "JPEG")[:200]
    response = api.post(url, files=_files(("cut.jpg", truncated)))
    assert response.status_code == 422 and "'cut.jpg'" in _error(response)

    response = api.post(url, files=_files(("empty.png", b"")))
    assert response.status_code == 422 and "'empty.png' is empty" in _error(response)

    monkeypatch.setattr(settings, "max_upload_bytes", 500)
    response = api.post(url, files=_files(("big.png", image_bytes(3, (400, 400)))))
    assert response.status_code == 413 and "'big.png' is" in _error(response)
    assert "the limit is 500 B" in _error(response)
    monkeypatch.setattr(settings, "max_upload_bytes", 50 * 1024 * 1024)

    monkeypatch.setattr(settings, "max_image_pixels", 100)
    response = api.post(url, files=_files(("wide.png", image_bytes(3))))
    assert response.status_code == 413 and "'wide.png' is 80x60 pixels" in _error(response)
    monkeypatch.setattr(settings, "max_image_pixels", 89_478_485)

    monkeypatch.setattr(settings, "predict_max_images", 2)
    response = api.post(url, files=_files(good, good, good))
    assert response.status_code == 413 and "too many images" in _error(response)
    assert "at most 2" in _error(response)
    monkeypatch.setattr(settings, "predict_max_images", 64)

    response = api.post(url, files={"thresholds": (None, "0.5")})  # multipart, no file
    assert response.status_code == 422 and "at least one image" in _error(response)

    for thresholds, message in (
        ("1.5", "between 0 and 1, got 1.5"),
        ("-0.2", "between 0 and 1, got -0.2"),
        (json.dumps({"apple": 2}), "threshold of tag 'apple' must be between 0 and 1"),
        (json.dumps({"banana": 0.5}), "unknown tag 'banana'"),
        ("high", "thresholds must be a number between 0 and 1 or a JSON object"),
        ("[0.5]", "thresholds must be a number or a JSON object"),
    ):
        response = api.post(url, files=_files(good), data={"thresholds": thresholds})
        assert response.status_code == 422, thresholds
        assert message in _error(response), (thresholds, _error(response))

    response = api.post(url, files=_files(good), data={"top_k": "0"})
    assert response.status_code == 422 and "top_k must be at least 1" in _error(response)
    response = api.post(url, files=_files(good), data={"top_k": "two"})
    assert response.status_code == 422 and "top_k must be a whole number" in _error(response)

    response = api.post("/api/v1/deployments/9999/predict", files=_files(good))
    assert response.status_code == 404 and "deployment 9999 not found" in _error(response)

    response = api.post(url, content=b"raw bytes", headers={"Content-Type": "image/png"})
    assert response.status_code == 422 and "multipart/form-data" in _error(response)


def test_authentication_is_required(
    client: TestClient, deployment: Deployment, api_key: str
) -> None:
    url = f"/api/v1/deployments/{deployment.id}/predict"
    files = _files(("a.png", image_bytes(1)))
    assert client.post(url, files=files).status_code == 401
    revoked = client.post(url, files=files, headers={"Authorization": "Bearer pt_wrong_key"})
    assert revoked.status_code == 401 and "invalid or revoked API key" in _error(revoked)
    ok = client.post(url, files=files, headers={"Authorization": f"Bearer {api_key}"})
    assert ok.status_code == 200


def test_deployments_that_cannot_serve(
    api: TestClient, session: Session, deployment: Deployment, evaluated: EvaluatedRun
) -> None:
    files = _files(("a.png", image_bytes(1)))
    deployment.active = False
    session.commit()
    response = api.post(f"/api/v1/deployments/{deployment.id}/predict", files=files)
    assert response.status_code == 409 and "switched off" in _error(response)
    deployment.active, deployment.status = True, "exporting"
    session.commit()
    response = api.post(f"/api/v1/deployments/{deployment.id}/predict", files=files)
    assert response.status_code == 409 and "is exporting, not live" in _error(response)
    response = api.post(f"/api/v1/projects/{evaluated.project.id}/predict", files=files)
    assert response.status_code == 404 and "has no live deployment" in _error(response)


def test_deployment_crud_and_bundle(
    api: TestClient, deployment: Deployment, evaluated: EvaluatedRun
) -> None:
    listed = api.get(f"/api/v1/projects/{evaluated.project.id}/deployments").json()
    assert [d["id"] for d in listed] == [deployment.id]
    assert listed[0]["labels"][1]["name"] == "pear" and listed[0]["has_int8"] is False
    patched = api.patch(
        f"/api/v1/deployments/{deployment.id}",
        json={"name": "production", "thresholds": {"plum": 0.25}},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["name"] == "production"
    assert patched.json()["thresholds"] == [0.5, 0.3, 0.25]
    bad = api.patch(f"/api/v1/deployments/{deployment.id}", json={"thresholds": 7})
    assert bad.status_code == 422 and "between 0 and 1" in _error(bad)

    bundle = api.get(f"/api/v1/deployments/{deployment.id}/bundle")
    assert bundle.status_code == 200 and bundle.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(bundle.content))
    assert json.loads(archive.read("thresholds.json"))["thresholds"]["plum"] == 0.25
    assert archive.read("model.onnx") == get_blob_store().read_bytes(deployment.onnx_key or "")
    missing = api.get(f"/api/v1/deployments/{deployment.id}/bundle?variant=int8")
    assert missing.status_code == 409 and "no INT8 model yet" in _error(missing)

    created = api.post(
        f"/api/v1/projects/{evaluated.project.id}/deployments",
        json={"run_id": evaluated.run.id, "checkpoint": "last"},
    )
    assert created.status_code == 202 and created.json()["status"] == "pending"
    assert created.json()["version"] == 2
    unknown = api.post(
        f"/api/v1/projects/{evaluated.project.id}/deployments", json={"run_id": 12345}
    )
    assert unknown.status_code == 404 and "run 12345 not found" in _error(unknown)
    assert api.delete(f"/api/v1/deployments/{deployment.id}").status_code == 204
    assert api.get(f"/api/v1/deployments/{deployment.id}").status_code == 404


def test_batch_prediction_job_results(
    api: TestClient, deployment: Deployment, evaluated: EvaluatedRun
) -> None:
    from worker.tasks.predictions import run_job

    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("folder/z1.png", image_bytes(11))
        zipped.writestr("__MACOSX/._z1.png", b"junk")
    response = api.post(
        f"/api/v1/deployments/{deployment.id}/prediction-jobs",
        files=_files(("a.png", image_bytes(10)), ("more.zip", archive.getvalue())),
    )
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["status"] == "queued" and job["total"] == 2
    early = api.get(f"/api/v1/prediction-jobs/{job['id']}/results?format=csv")
    assert early.status_code == 409 and "is queued" in _error(early)

    assert run_job(job["id"]) == "succeeded"
    assert run_job(job["id"]) == "not queued"
    state = api.get(f"/api/v1/prediction-jobs/{job['id']}").json()
    assert (state["status"], state["processed"], state["failed"]) == ("succeeded", 2, 0)

    document = api.get(f"/api/v1/prediction-jobs/{job['id']}/results?format=json").json()
    assert [image["file"] for image in document["images"]] == ["a.png", "more.zip/folder/z1.png"]
    expected = _expected_scores(evaluated, [image_bytes(10), image_bytes(11)])
    first = {tag["name"]: tag["score"] for tag in document["images"][0]["tags"]}
    assert first["apple"] == pytest.approx(float(expected[0][0]), abs=1e-6)

    rows = list(csv.reader(io.StringIO(
        api.get(f"/api/v1/prediction-jobs/{job['id']}/results?format=csv").text
    )))  # fmt: skip
    assert rows[0] == ["file", "predicted", "apple", "pear", "plum", "error"]
    assert rows[1][0] == "a.png" and float(rows[1][2]) == pytest.approx(first["apple"], abs=1e-5)

    zipped = zipfile.ZipFile(io.BytesIO(
        api.get(f"/api/v1/prediction-jobs/{job['id']}/results?format=zip").content
    ))  # fmt: skip
    names = zipped.namelist()
    for image in document["images"]:
        folders = image["predicted"] or ["_no_tag"]
        for folder in folders:
            assert any(n.startswith(f"{folder}/") and n.endswith(".png") for n in names)
    assert "results.csv" in names

    bad = api.post(
        f"/api/v1/deployments/{deployment.id}/prediction-jobs",
        files=_files(("a.png", image_bytes(1)), ("bad.gif", b"GIF89a broken")),
    )
    assert bad.status_code == 422 and "'bad.gif'" in _error(bad)
    listed = api.get(f"/api/v1/projects/{evaluated.project.id}/prediction-jobs").json()
    assert [j["id"] for j in listed] == [job["id"]], "a refused upload creates no job"
    unknown_format = api.get(f"/api/v1/prediction-jobs/{job['id']}/results?format=xml")
    assert unknown_format.status_code == 422
