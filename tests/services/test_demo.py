"""The digits demo project: real images through the upload path, tagged and labeled."""

from __future__ import annotations

import io
import subprocess
from typing import Any

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select

from app.deps import get_blob_store
from app.errors import InvalidInput
from app.models import Annotation, Asset, Project, Tag, Workflow
from app.services import demo as demo_service
from app.services import jobs
from tests.fixtures.training import purge_broker, wait_for


def test_render_mosaic_shows_one_to_four_digits() -> None:
    images, targets = demo_service._digits()
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(40):
        png, digits = demo_service.render_mosaic(rng, images, targets)
        image = Image.open(io.BytesIO(png))
        assert image.size == (demo_service.CANVAS, demo_service.CANVAS)
        assert 1 <= len(digits) <= 4 and digits == sorted(set(digits))
        assert all(0 <= d <= 9 for d in digits)
        seen.update(digits)
    assert seen == set(range(10))


def test_fill_makes_labeled_tagged_images_in_blob_storage(session, project) -> None:
    store = get_blob_store()
    demo_service.fill_demo_project(session=session, storage=store, project=project, images=12)
    tags = session.scalars(select(Tag).where(Tag.project_id == project.id)).all()
    assert sorted(t.name for t in tags) == [str(d) for d in range(10)]
    assert {t.hotkey for t in tags} == {str(d) for d in range(10)}
    assets = session.scalars(select(Asset).where(Asset.project_id == project.id)).all()
    assert len(assets) == 12
    assert {a.review_state for a in assets} == {"labeled"}
    for asset in assets:
        assert asset.storage_key == f"projects/{project.id}/assets/{asset.sha256}.png"
        assert asset.thumb_key == f"projects/{project.id}/thumbs/{asset.sha256}.jpg"
        assert store.exists(asset.storage_key) and store.exists(asset.thumb_key)
        count = session.scalar(select(func.count()).where(Annotation.asset_id == asset.id))
        assert 1 <= count <= 4
    assert project.description == demo_service.DEMO_DESCRIPTION
    workflow = session.scalars(select(Workflow).where(Workflow.project_id == project.id)).one()
    assert workflow.name == demo_service.QUICK_START
    assert workflow.graph["model"]["input_size"] == demo_service.CANVAS
    assert sorted(workflow.graph["dataset"]["tag_ids"]) == sorted(t.id for t in tags)


def test_same_seed_same_images(session, user) -> None:
    from app.services import projects as project_service

    store = get_blob_store()
    hashes = []
    for seed in (5, 5, 6):
        project = project_service.create(session=session, name=f"demo {seed}")
        demo_service.fill_demo_project(
            session=session, storage=store, project=project, images=4, seed=seed
        )
        hashes.append(set(session.scalars(
            select(Asset.sha256).where(Asset.project_id == project.id)
        )))  # fmt: skip
    assert hashes[0] == hashes[1] != hashes[2]


def test_create_demo_project_is_what_the_cli_calls(session, capsys) -> None:
    project = demo_service.create_demo_project(images=5, seed=1, progress=False)
    assert project.name == demo_service.DEMO_NAME
    count = session.scalar(select(func.count(Asset.id)).where(Asset.project_id == project.id))
    assert count == 5
    with pytest.raises(InvalidInput, match="1 to 20000 images"):
        demo_service.create_demo_project(images=0)


def test_a_redelivered_job_carries_on(session, project) -> None:
    store = get_blob_store()
    demo_service.fill_demo_project(session=session, storage=store, project=project, images=3)
    project.description = demo_service.CREATING
    session.commit()
    demo_service.fill_demo_project(session=session, storage=store, project=project, images=7)
    count = session.scalar(select(func.count(Asset.id)).where(Asset.project_id == project.id))
    assert count == 7
    assert session.scalar(select(func.count(Tag.id)).where(Tag.project_id == project.id)) == 10


def test_the_api_queues_the_job_and_reports_progress(api, session, monkeypatch) -> None:
    sent: list[tuple[Any, ...]] = []
    monkeypatch.setattr(jobs, "enqueue", lambda name, *args, **kw: sent.append((name, args)))
    response = api.post("/api/v1/demo", json={"images": 30})
    assert response.status_code == 202, response.text
    body = response.json()
    assert (body["state"], body["images"], body["total"]) == ("creating", 0, 30)
    assert sent == [(demo_service.DEMO_TASK, (body["project_id"], 30, 0))]
    project = session.get(Project, body["project_id"])
    failure = RuntimeError("disk full")
    demo_service.mark_failed(session=session, project_id=project.id, error=failure)
    progress = api.get(f"/api/v1/demo/{project.id}").json()
    assert progress["state"] == "failed"
    assert "disk full" in progress["message"]
    assert api.post("/api/v1/demo", json={"images": 0}).status_code == 422


@pytest.mark.slow
def test_the_demo_job_runs_on_a_real_worker(
    api, session, celery_worker: subprocess.Popen[bytes]
) -> None:
    purge_broker()
    project_id = api.post("/api/v1/demo", json={"images": 8}).json()["project_id"]

    def ready() -> bool:
        return api.get(f"/api/v1/demo/{project_id}").json()["state"] != "creating"

    wait_for(ready, timeout=90, what="the demo job")
    progress = api.get(f"/api/v1/demo/{project_id}").json()
    assert (progress["state"], progress["images"]) == ("ready", 8)
