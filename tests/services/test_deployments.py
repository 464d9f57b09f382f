"""Deployments: export to ONNX verified against PyTorch before going live, defaults, thresholds,
INT8 copies with their measured metric change, bundles and deletion."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.deps import get_blob_store
from app.errors import Conflict, InvalidInput, NotFound
from app.inference.sessions import OnnxModel, models
from app.models import Deployment, Project
from app.services import deployment_files
from app.services import deployments as deployment_service
from app.services import evaluations as evaluation_service
from tests.fixtures.evaluated import EvaluatedRun, create_evaluated_run, image_bytes
from worker.tasks import deployments as deployment_tasks


@pytest.fixture(autouse=True)
def _fresh_models() -> Iterator[None]:
    yield
    models.clear()


_EXPORTS: dict[str, tuple[bytes, dict[str, Any]]] = {}


@pytest.fixture(autouse=True)
def _export_each_checkpoint_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real exporter, run once per distinct checkpoint file (it takes seconds)."""
    real = deployment_tasks.export_onnx

    def export(checkpoint_path: Path, out_path: Path) -> dict[str, Any]:
        digest = hashlib.sha256(Path(checkpoint_path).read_bytes()).hexdigest()
        if digest not in _EXPORTS:
            metadata = real(checkpoint_path, out_path)
            _EXPORTS[digest] = (Path(out_path).read_bytes(), metadata)
        data, metadata = _EXPORTS[digest]
        Path(out_path).write_bytes(data)
        return metadata

    monkeypatch.setattr(deployment_tasks, "export_onnx", export)


@pytest.fixture
def evaluated(session: Session, project: Project, make_tag) -> EvaluatedRun:  # type: ignore[no-untyped-def]
    tags = [make_tag("apple"), make_tag("pear"), make_tag("plum")]
    return create_evaluated_run(session, project, tags, n_train=6, n_val=6)


def _deploy(session: Session, evaluated: EvaluatedRun, **options: object) -> Deployment:
    create: Any = deployment_service.create
    deployment = create(
        session=session, project=evaluated.project, run_id=evaluated.run.id, **options
    )
    assert deployment.status == "pending" and deployment.onnx_key is None
    status = deployment_tasks.export_deployment(
        deployment.id, bool(options.get("make_default")), bool(options.get("quantize"))
    )
    session.expire_all()
    deployment = deployment_service.get(session=session, deployment_id=deployment.id)
    assert deployment.status == status
    return deployment


def test_export_verifies_then_goes_live_with_labels_and_thresholds(
    session: Session, evaluated: EvaluatedRun
) -> None:
    expected = evaluation_service.thresholds_by_tag(
        session=session, store=get_blob_store(), project=evaluated.project,
        run_id=evaluated.run.id, kind="best",
    )  # fmt: skip
    deployment = _deploy(session, evaluated)
    assert deployment.status == "live", deployment.error
    assert deployment.verify_max_diff is not None and deployment.verify_max_diff <= 1e-4
    assert deployment.is_default, "the first live deployment becomes the default"
    assert deployment.version == 1
    assert [label["name"] for label in deployment.labels] == ["apple", "pear", "plum"]
    assert [label["tag_id"] for label in deployment.labels] == [t.id for t in evaluated.tags]
    assert deployment.thresholds == pytest.approx([expected[t.id] for t in evaluated.tags])
    assert deployment.preprocessing["input_size"] == 64

    store = get_blob_store()
    folder = deployment_files.prefix(deployment)
    thresholds = json.loads(store.read_bytes(folder + "thresholds.json"))
    assert thresholds["thresholds"]["pear"] == pytest.approx(deployment.thresholds[1])
    labels = json.loads(store.read_bytes(folder + "labels.json"))
    assert [label["name"] for label in labels["labels"]] == ["apple", "pear", "plum"]
    assert json.loads(store.read_bytes(folder + "preprocessing.json"))["input_size"] == 64
    assert deployment.onnx_key and deployment.onnx_key.startswith(folder)

    # The served model scores real images.
    model = deployment_service.load_model(store=store, deployment=deployment)
    scores = model.predict([image_bytes(1), image_bytes(2)])
    assert scores.shape == (2, 3) and np.all((scores >= 0) & (scores <= 1))
    # A redelivered export task does nothing.
    assert deployment_tasks.export_deployment(deployment.id) == "not pending"


def test_a_model_that_disagrees_with_pytorch_never_goes_live(
    session: Session, evaluated: EvaluatedRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deployment_tasks, "verify_onnx", lambda *args, **kwargs: 3e-3)
    deployment = _deploy(session, evaluated)
    assert deployment.status == "failed"
    assert "disagree by 3.00e-03" in (deployment.error or "")
    assert not deployment.is_default
    with pytest.raises(Conflict, match="not live"):
        deployment_service.load_model(store=get_blob_store(), deployment=deployment)
    with pytest.raises(NotFound, match="no live deployment"):
        deployment_service.get_default(session=session, project=evaluated.project)


def test_a_broken_checkpoint_fails_with_its_reason(
    session: Session, evaluated: EvaluatedRun
) -> None:
    get_blob_store().put(evaluated.best.storage_key, b"not a checkpoint")
    deployment = _deploy(session, evaluated)
    assert deployment.status == "failed"
    assert deployment.error and deployment.error.startswith("export failed:")


def test_several_deployments_one_default(session: Session, evaluated: EvaluatedRun) -> None:
    first = _deploy(session, evaluated)
    second = _deploy(session, evaluated, kind="last", name="latest weights")
    assert second.version == 2 and second.name == "latest weights"
    assert first.is_default and not second.is_default
    third = _deploy(session, evaluated, make_default=True)
    session.expire_all()
    assert deployment_service.get_default(session=session, project=evaluated.project).id == third.id
    assert not deployment_service.get(session=session, deployment_id=first.id).is_default
    # Switching the default off the default's row falls back to the newest live deployment.
    deployment_service.update_deployment(
        session=session, store=get_blob_store(), deployment=first, is_default=True
    )
    assert deployment_service.get_default(session=session, project=evaluated.project).id == first.id


def test_thresholds_update_and_their_checks(session: Session, evaluated: EvaluatedRun) -> None:
    deployment = _deploy(session, evaluated)
    store = get_blob_store()
    deployment_service.update_deployment(
        session=session, store=store, deployment=deployment, thresholds={"PEAR": 0.9}
    )
    assert deployment.thresholds[1] == 0.9
    saved = json.loads(store.read_bytes(deployment_files.prefix(deployment) + "thresholds.json"))
    assert saved["thresholds"]["pear"] == 0.9
    deployment_service.update_deployment(
        session=session, store=store, deployment=deployment, thresholds=0.3
    )
    assert deployment.thresholds == [0.3, 0.3, 0.3]
    with pytest.raises(InvalidInput, match="unknown tag 'fig'"):
        deployment_service.parse_thresholds(deployment, {"fig": 0.5})
    with pytest.raises(InvalidInput, match=r"between 0 and 1, got 1\.2"):
        deployment_service.parse_thresholds(deployment, 1.2)


def test_int8_bundle_reports_its_metric_change(session: Session, evaluated: EvaluatedRun) -> None:
    deployment = _deploy(session, evaluated, quantize=True)
    report = deployment.int8_report or {}
    assert report.get("status") == "ready", report
    assert report["images"] == 6
    assert report["bytes"]["int8"] < report["bytes"]["fp32"] / 2
    assert set(report["metrics"]) >= {"map", "micro_f1"}
    assert report["metrics"]["map"]["change"] == pytest.approx(
        report["metrics"]["map"]["int8"] - report["metrics"]["map"]["fp32"]
    )
    assert 0 <= report["max_abs_score_diff"] < 0.2

    store = get_blob_store()
    fp32_bundle = deployment_files.bundle(store=store, deployment=deployment)
    fp32 = zipfile.ZipFile(io.BytesIO(fp32_bundle))
    int8 = zipfile.ZipFile(
        io.BytesIO(deployment_files.bundle(store=store, deployment=deployment, variant="int8"))
    )
    expected = {"model.onnx", "labels.json", "thresholds.json", "preprocessing.json", "README.md"}
    assert set(fp32.namelist()) == expected == set(int8.namelist())
    assert len(int8.read("model.onnx")) < len(fp32.read("model.onnx")) / 2
    readme = fp32.read("README.md").decode()
    assert "(N, 3, 64, 64)" in readme and "score >= its threshold" in readme
    # The bundled INT8 model runs and scores like the float32 one.
    images = [image_bytes(7), image_bytes(8)]
    full = OnnxModel(fp32.read("model.onnx")).predict(images)
    small = OnnxModel(int8.read("model.onnx")).predict(images)
    assert np.abs(full - small).max() < 0.2


def test_int8_on_request_and_bundle_errors(session: Session, evaluated: EvaluatedRun) -> None:
    deployment = _deploy(session, evaluated)
    store = get_blob_store()
    with pytest.raises(Conflict, match="no INT8 model yet"):
        deployment_files.bundle(store=store, deployment=deployment, variant="int8")
    with pytest.raises(InvalidInput, match="variant must be one of fp32, int8"):
        deployment_files.bundle(store=store, deployment=deployment, variant="fp16")
    deployment_service.request_int8(session=session, deployment=deployment)
    assert deployment.int8_report == {"status": "queued"}
    assert deployment_tasks.quantize_deployment(deployment.id) == "ready"
    session.expire_all()
    deployment = deployment_service.get(session=session, deployment_id=deployment.id)
    assert deployment.int8_key and (deployment.int8_report or {})["status"] == "ready"


def test_delete_removes_files_and_unloads(session: Session, evaluated: EvaluatedRun) -> None:
    deployment = _deploy(session, evaluated)
    store = get_blob_store()
    deployment_service.load_model(store=store, deployment=deployment)
    key, folder = deployment.onnx_key, deployment_files.prefix(deployment)
    assert key in models
    deployment_service.delete(session=session, store=store, deployment=deployment)
    assert key not in models
    assert list(store.list(folder)) == []
    with pytest.raises(NotFound, match=f"deployment {deployment.id} not found"):
        deployment_service.get(session=session, deployment_id=deployment.id)


def test_deploying_needs_a_checkpoint(session: Session, evaluated: EvaluatedRun) -> None:
    with pytest.raises(NotFound, match="run 999 not found"):
        deployment_service.create(session=session, project=evaluated.project, run_id=999)
    session.delete(evaluated.last)
    session.commit()
    with pytest.raises(NotFound, match="no 'last' checkpoint"):
        deployment_service.create(
            session=session, project=evaluated.project, run_id=evaluated.run.id, kind="last"
        )


@pytest.mark.slow
def test_export_through_a_real_worker_then_predict(
    api: TestClient, evaluated: EvaluatedRun, celery_worker: object
) -> None:
    import time

    created = api.post(
        f"/api/v1/projects/{evaluated.project.id}/deployments",
        json={"run_id": evaluated.run.id, "make_default": True},
    )
    assert created.status_code == 202, created.text
    deployment_id = created.json()["id"]
    deadline = time.monotonic() + 180
    state = created.json()
    while state["status"] in ("pending", "exporting") and time.monotonic() < deadline:
        time.sleep(1)
        state = api.get(f"/api/v1/deployments/{deployment_id}").json()
    assert state["status"] == "live", state
    assert state["is_default"] and state["verify_max_diff"] <= 1e-4
    response = api.post(
        f"/api/v1/projects/{evaluated.project.id}/predict",
        files=[("files", ("a.png", image_bytes(5), "image/png"))],
    )
    assert response.status_code == 200, response.text
    assert response.json()["deployment_id"] == deployment_id
