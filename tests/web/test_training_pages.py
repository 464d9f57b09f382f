"""The workflow builder, runs list and run dashboard pages render for a signed-in user."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from app.services import jobs
from app.services import runs as run_service
from app.services import workflows as workflow_service
from tests.fixtures.training import add_asset, tiny_graph


def _page_data(html: str, element_id: str) -> Any:
    pattern = rf'<script type="application/json" id="{element_id}">(.*?)</script>'
    found = re.search(pattern, html, re.S)
    assert found, f"no #{element_id} on the page"
    return json.loads(found.group(1))


def test_pages_need_a_sign_in(client, project) -> None:
    for path in ("workflows", "runs", "runs/1"):
        response = client.get(f"/projects/{project.id}/{path}", follow_redirects=False)
        assert response.status_code == 303


def test_builder_runs_list_and_dashboard(
    browser_client, session, project, make_tag, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jobs, "enqueue", lambda *args, **kwargs: "id")
    empty = browser_client.get(f"/projects/{project.id}/workflows")
    assert empty.status_code == 200
    assert _page_data(empty.text, "page-data")["selected"] is None
    assert 'id="no-runs"' in browser_client.get(f"/projects/{project.id}/runs").text

    cat, dog = make_tag("cat"), make_tag("dog")
    for row in [(cat,), (dog,), (cat, dog), (cat,), (dog,), (cat,), (dog,), ()]:
        add_asset(session, project, tags=row)
    workflow = workflow_service.create(
        session=session, project=project, name="tiny", graph=tiny_graph([cat.id, dog.id])
    )
    run = run_service.start_run(session=session, project=project, workflow=workflow)

    builder = browser_client.get(f"/projects/{project.id}/workflows?workflow={workflow.id}")
    data = _page_data(builder.text, "page-data")
    assert data["selected"] == workflow.id
    assert {"name": "hgnetv2_b0", "input_size": 320} in data["archs"]

    runs = browser_client.get(f"/projects/{project.id}/runs").text
    assert f'data-run-id="{run.id}"' in runs and "hgnetv2_b0" in runs and "queued" in runs

    dashboard = browser_client.get(f"/projects/{project.id}/runs/{run.id}")
    assert dashboard.status_code == 200
    assert "/static/vendor/uPlot-1.6.32.min.css" in dashboard.text
    assert _page_data(dashboard.text, "run-data")["run"]["status"] == "queued"
    assert "Frozen configuration" in dashboard.text and "cat" in dashboard.text
    assert browser_client.get(f"/projects/{project.id}/runs/999").status_code == 404
