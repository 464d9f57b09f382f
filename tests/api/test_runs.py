"""Workflows and runs over HTTP, and the run event stream (SSE) read from the database."""

from __future__ import annotations

import asyncio
import io
import json
import threading
import time
from typing import Any

import pytest
from PIL import Image
from sqlalchemy.orm import Session

from app.api import runs as runs_api
from app.db import new_session
from app.deps import get_blob_store
from app.models import Project, TrainingRun
from app.services import demo as demo_service
from app.services import jobs, run_progress
from tests.fixtures.training import add_asset, tiny_graph


@pytest.fixture(autouse=True)
def no_broker(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    sent: list[tuple[Any, ...]] = []
    monkeypatch.setattr(jobs, "enqueue", lambda name, *args, **kw: sent.append((name, args)))
    return sent


@pytest.fixture
def tagged(session: Session, project: Project, make_tag) -> list[int]:  # type: ignore[no-untyped-def]
    cat, dog = make_tag("cat"), make_tag("dog")
    for row in [(cat,), (dog,), (cat, dog), (cat,), (dog,), (), (cat,), (dog,)]:
        add_asset(session, project, tags=row)
    return [cat.id, dog.id]


def _events(text: str) -> list[tuple[str, Any]]:
    events = []
    for block in text.strip().split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in block.splitlines() if ": " in line and line[0] != ":"
        )
        if "event" in fields:
            events.append((fields["event"], json.loads(fields["data"])))
    return events


def test_workflow_crud_versions_and_check(api, project, tagged) -> None:
    base = f"/api/v1/projects/{project.id}/workflows"
    created = api.post(base, json={"name": "First"})
    assert created.status_code == 201, created.text
    workflow = created.json()
    assert workflow["version"] == 1
    assert workflow["graph"]["dataset"]["tag_ids"] == tagged
    graph = tiny_graph(tagged)
    updated = api.put(f"{base}/{workflow['id']}", json={"graph": graph}).json()
    assert updated["version"] == 2
    assert updated["graph"]["training"]["batch_size"] == 4
    assert [w["id"] for w in api.get(base).json()] == [workflow["id"]]

    check = api.get(f"{base}/{workflow['id']}/check").json()
    assert check["errors"] == []
    assert (check["train_images"], check["val_images"], check["estimated_steps"]) == (6, 2, 6)
    bad = api.post(f"{base}/check", json={**graph, "training": {"batch_size": 100}}).json()
    assert "batch size 100 is larger than the 6 training images" in bad["errors"][0]

    invalid = api.put(f"{base}/{workflow['id']}", json={"graph": {"model": {"arch": "nope"}}})
    assert invalid.status_code == 422
    assert "unsupported architecture 'nope'" in invalid.json()["detail"]
    options = api.get(f"{base}/options").json()
    archs = {a["name"]: a["input_size"] for a in options["archs"]}
    assert archs["hgnetv2_b0"] == 320 and "resnet50" in archs and "efficientnetv2_s" in archs
    assert api.delete(f"{base}/{workflow['id']}").status_code == 204
    assert api.get(f"{base}/{workflow['id']}").status_code == 404


def test_augmentation_preview_is_a_jpeg_grid(api, session, project) -> None:
    url = f"/api/v1/projects/{project.id}/workflows/augmentation-preview"
    assert api.post(url, json={}).status_code == 404  # no images yet
    demo_service.fill_demo_project(
        session=session, storage=get_blob_store(), project=project, images=3
    )
    body = {"augmentations": {"hflip": 1, "rotation_degrees": 30, "crop_scale_min": 0.5},
            "input_size": 48, "images": 2, "variants": 3}  # fmt: skip
    response = api.post(url, json=body)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/jpeg"
    grid = Image.open(io.BytesIO(response.content))
    assert grid.size == (4 * 48 + 3 * 4, 2 * 48 + 4)


def test_start_list_read_and_cancel_a_run(api, project, tagged, no_broker) -> None:
    workflow = api.post(
        f"/api/v1/projects/{project.id}/workflows", json={"name": "w", "graph": tiny_graph(tagged)}
    ).json()
    response = api.post(f"/api/v1/projects/{project.id}/runs", json={"workflow_id": workflow["id"]})
    assert response.status_code == 201, response.text
    run = response.json()
    assert (run["status"], run["arch"], run["input_size"], run["total_steps"]) == (
        "queued", "hgnetv2_b0", 32, 6
    )
    assert run["dataset"]["counts"]["train"] == 6
    assert "assets" not in run["dataset"]  # the image list stays out of the API
    assert no_broker == [("worker.tasks.train.run_training", (run["id"],))]
    listed = api.get(f"/api/v1/projects/{project.id}/runs").json()
    assert [r["id"] for r in listed] == [run["id"]]
    url = f"/api/v1/projects/{project.id}/runs/{run['id']}"
    assert api.get(url).json()["workflow_snapshot"]["train_config"]["max_steps"] == 6
    logs = api.get(url + "/logs").json()
    assert logs[0]["message"].startswith("queued by admin@example.com")
    cancelled = api.post(url + "/cancel").json()
    assert cancelled["status"] == "cancelled"
    again = api.post(url + "/cancel")
    assert again.status_code == 409 and "already cancelled" in again.json()["detail"]
    assert api.delete(url).status_code == 204


def test_an_invalid_workflow_is_refused_with_its_problems(api, project, make_tag) -> None:
    tag = make_tag("lonely")
    body = {"name": "w", "graph": tiny_graph([tag.id])}
    workflow = api.post(f"/api/v1/projects/{project.id}/workflows", json=body).json()
    response = api.post(f"/api/v1/projects/{project.id}/runs", json={"workflow_id": workflow["id"]})
    assert response.status_code == 422
    assert "there are no labeled images" in response.json()["detail"]
    assert response.json()["details"]["errors"]
    assert api.get(f"/api/v1/projects/{project.id}/runs").json() == []


def _running_run(api, session, project, tagged) -> TrainingRun:  # type: ignore[no-untyped-def]
    workflow = api.post(
        f"/api/v1/projects/{project.id}/workflows", json={"name": "w", "graph": tiny_graph(tagged)}
    ).json()
    run_id = api.post(
        f"/api/v1/projects/{project.id}/runs", json={"workflow_id": workflow["id"]}
    ).json()["id"]
    claim = run_progress.claim_run(session=session, run_id=run_id, hostname="w", stale_after_s=60)
    assert claim is not None
    run_progress.add_metrics(session=session, run_id=run_id, step=1, split="train",
                             values={"loss": 0.9, "lr": 0.001})  # fmt: skip
    run_progress.add_metrics(session=session, run_id=run_id, step=3, split="val",
                             values={"loss": 0.7, "map": 0.5})  # fmt: skip
    run = session.get(TrainingRun, run_id)
    assert run is not None
    return run


def test_metrics_since_a_step(api, session, project, tagged) -> None:
    run = _running_run(api, session, project, tagged)
    url = f"/api/v1/projects/{project.id}/runs/{run.id}/metrics"
    assert [m["name"] for m in api.get(url).json()] == ["loss", "lr", "loss", "map"]
    since = api.get(url, params={"since_step": 1}).json()
    assert [(m["step"], m["split"], m["name"]) for m in since] == [
        (3, "val", "loss"), (3, "val", "map")
    ]
    assert [m["value"] for m in api.get(url, params={"name": "map"}).json()] == [0.5]


def test_event_stream_sends_history_and_ends_with_the_run(
    api, session, project, tagged, monkeypatch
) -> None:
    monkeypatch.setattr(runs_api, "POLL_S", 0.05)
    run = _running_run(api, session, project, tagged)

    def finish_later() -> None:
        time.sleep(0.5)
        with new_session() as other:
            run_progress.add_log(session=other, run_id=run.id, message="almost done")
            run_progress.add_metrics(session=other, run_id=run.id, step=6, split="val",
                                     values={"map": 0.8})  # fmt: skip
            run_progress.finish(session=other, run_id=run.id, attempt=1, status="succeeded", step=6)

    worker = threading.Thread(target=finish_later)
    worker.start()
    with api.stream("GET", f"/api/v1/runs/{run.id}/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        text = "".join(response.iter_text())
    worker.join()
    events = _events(text)
    names = [name for name, _ in events]
    assert names[0] == "metrics" and names[-1] == "end"
    metrics = [m for name, data in events if name == "metrics" for m in data]
    assert [(m["step"], m["name"]) for m in metrics] == [
        (1, "loss"), (1, "lr"), (3, "loss"), (3, "map"), (6, "map")
    ]
    logs = [line["message"] for name, data in events if name == "log" for line in data]
    assert logs[0].startswith("queued by") and logs[-1] == "almost done"
    statuses = [data["status"] for name, data in events if name == "status"]
    assert statuses[0] == "running" and statuses[-1] == "succeeded"
    assert events[-1][1]["status"] == "succeeded"


def test_event_stream_resumes_after_the_last_event_id(api, session, project, tagged) -> None:
    run = _running_run(api, session, project, tagged)
    run_progress.finish(session=session, run_id=run.id, attempt=1, status="failed", error="x")
    with api.stream("GET", f"/api/v1/runs/{run.id}/events") as response:
        first = _events("".join(response.iter_text()))
    last_metric = max(m["id"] for name, data in first if name == "metrics" for m in data)
    with api.stream(
        "GET", f"/api/v1/runs/{run.id}/events", headers={"Last-Event-ID": f"{last_metric}:999999"}
    ) as response:
        again = _events("".join(response.iter_text()))
    assert [name for name, _ in again] == ["status", "checkpoints", "end"]


def test_event_stream_needs_auth_and_a_run(client, api, session, project, tagged) -> None:
    run = _running_run(api, session, project, tagged)
    anonymous = client.get(f"/api/v1/runs/{run.id}/events", headers={"Authorization": ""})
    assert anonymous.status_code == 401
    assert api.get("/api/v1/runs/999999/events").status_code == 404


def test_event_stream_stops_when_the_client_disconnects(api, session, project, tagged) -> None:
    run = _running_run(api, session, project, tagged)

    class GoneRequest:
        async def is_disconnected(self) -> bool:
            return True

    async def collect() -> list[str]:
        return [chunk async for chunk in runs_api._event_stream(GoneRequest(), run.id, 0, 0)]  # type: ignore[arg-type]

    assert asyncio.run(asyncio.wait_for(collect(), timeout=5)) == ["retry: 3000\n\n"]
