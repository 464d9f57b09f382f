"""/api/v1/projects/{id}/runs/{id}/evaluation: report, scores, thresholds, compare, scoring."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.models import Project
from tests.fixtures.evaluated import EvaluatedRun, create_evaluated_run


@pytest.fixture
def evaluated(session: Session, project: Project, make_tag) -> EvaluatedRun:  # type: ignore[no-untyped-def]
    tags = [make_tag("apple"), make_tag("pear")]
    return create_evaluated_run(session, project, tags, n_train=6, n_val=5, real_checkpoints=False)


def _url(evaluated: EvaluatedRun, path: str = "") -> str:
    return f"/api/v1/projects/{evaluated.project.id}/runs/{evaluated.run.id}/evaluation{path}"


def test_report_with_scores_and_curves(api: TestClient, evaluated: EvaluatedRun) -> None:
    response = api.get(_url(evaluated), params={"scores": True, "curves": True})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["checkpoint"]["kind"] == "best"
    assert [tag["name"] for tag in body["tags"]] == ["apple", "pear"]
    val = body["splits"]["val"]
    assert val["counts"]["images"] == 5 and len(val["per_label"]) == 2
    scores = np.frombuffer(base64.b64decode(val["matrix"]["scores_f32"]), "<f4")
    assert np.array_equal(scores.reshape(5, 2), evaluated.matrices["val"].scores)
    assert set(val["curves"]) == {"micro_pr", "per_label"} and "f1" in val["sweep"]
    plain = api.get(_url(evaluated)).json()
    assert "matrix" not in plain["splits"]["val"] and "curves" not in plain["splits"]["val"]


def test_report_at_unsaved_thresholds(api: TestClient, evaluated: EvaluatedRun) -> None:
    everything = api.get(_url(evaluated), params={"thresholds": "0"}).json()
    assert everything["thresholds"]["values"] == [0.0, 0.0]
    assert everything["splits"]["val"]["counts"]["predicted"] == [5, 5]
    pear = api.get(_url(evaluated), params={"thresholds": '{"pear": 1}'}).json()
    assert pear["thresholds"]["values"][1] == 1.0
    assert pear["thresholds"]["mode"] == "optimized", "nothing was saved"
    bad = api.get(_url(evaluated), params={"thresholds": "3"})
    assert bad.status_code == 422 and "between 0 and 1" in bad.json()["detail"]


def test_save_thresholds(api: TestClient, evaluated: EvaluatedRun) -> None:
    response = api.put(_url(evaluated, "/thresholds"), json={"all": 0.42})
    assert response.status_code == 200, response.text
    assert response.json()["thresholds"]["values"] == pytest.approx([0.42, 0.42])
    response = api.put(_url(evaluated, "/thresholds"), json={"values": {"pear": 0.9}})
    assert response.json()["thresholds"]["values"] == pytest.approx([0.42, 0.9])
    assert api.get(_url(evaluated)).json()["thresholds"]["mode"] == "custom"
    bad = api.put(_url(evaluated, "/thresholds"), json={"values": {"pear": 1.01}})
    assert bad.status_code == 422 and "between 0 and 1" in bad.json()["detail"]
    back = api.put(_url(evaluated, "/thresholds"), json={"mode": "optimized"})
    assert back.json()["thresholds"]["mode"] == "optimized"


def test_compare_and_score_requests(api: TestClient, evaluated: EvaluatedRun) -> None:
    compared = api.get(_url(evaluated, "/compare")).json()
    assert compared["best"]["available"] and not compared["last"]["available"]
    assert "micro_f1" in compared["best"]["splits"]["val"]
    queued = api.post(_url(evaluated, "/score"), json={"checkpoint": "last"})
    assert queued.status_code == 202 and queued.json()["queued"] == ["val", "train"]
    missing = api.get(_url(evaluated), params={"checkpoint": "last"})
    assert missing.status_code == 404 and "has no evaluation" in missing.json()["detail"]


def test_other_projects_runs_are_not_found(
    api: TestClient, session: Session, evaluated: EvaluatedRun
) -> None:
    from app.services import projects as project_service

    other = project_service.create(session=session, name="Other")
    response = api.get(f"/api/v1/projects/{other.id}/runs/{evaluated.run.id}/evaluation")
    assert response.status_code == 404
    assert "not found in project 'Other'" in response.json()["detail"]
    assert api.get(_url(evaluated)).status_code == 200
