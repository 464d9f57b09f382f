"""The training task end to end through a real Celery worker: success, cancel, a killed worker.

What happens after a worker is killed depends on the broker. The embedded SQLAlchemy transport
marks a message invisible when it is delivered and never restores it, so the run can only be
failed by the reaper. Redis keeps unacked messages and hands them out again after the visibility
timeout, so a new worker resumes the run from its `last` checkpoint.
"""

from __future__ import annotations

import hashlib
import io
import os
import signal
import subprocess
from collections.abc import Iterator

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.config import settings
from app.deps import get_blob_store
from app.models import Checkpoint, Evaluation, Project, RunLog, RunMetric, TrainingRun, User
from app.services import demo as demo_service
from app.services import projects as project_service
from app.services import runs as run_service
from app.services import workflows as workflow_service
from tests.fixtures.training import (
    WorkerProcess,
    purge_broker,
    run_status,
    tiny_graph,
    wait_for,
)
from worker.tasks.train import run_training

REDIS = settings.broker_url.startswith("redis")


@pytest.fixture
def digits(session: Session, user: User) -> Project:
    """A 16-image demo project (real PNGs in blob storage)."""
    purge_broker()
    project = project_service.create(session=session, name="digits", created_by=user)
    return demo_service.fill_demo_project(
        session=session, storage=get_blob_store(), project=project, images=16, seed=0
    )


def _start(session: Session, project: Project, **training: object) -> TrainingRun:
    tag_ids = [tag["id"] for tag in _tags(session, project)]
    workflow = workflow_service.create(
        session=session, project=project, name="tiny", graph=tiny_graph(tag_ids, **training)
    )
    return run_service.start_run(session=session, project=project, workflow=workflow)


def _tags(session: Session, project: Project) -> list[dict[str, int]]:
    from app.services import tags as tag_service

    return [{"id": t.id} for t in tag_service.get_all(session=session, project=project)]


@pytest.fixture
def workers() -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    for worker in started:
        worker.stop()


@pytest.mark.slow
def test_a_run_trains_on_a_real_worker(
    session: Session, digits: Project, celery_worker: subprocess.Popen[bytes]
) -> None:
    run = _start(session, digits)
    done = wait_for(
        lambda: run_status(session, run.id).status in run_service.FINISHED, timeout=300,
        what="the run to finish",
    )  # fmt: skip
    assert done
    run = run_status(session, run.id)
    assert run.status == "succeeded", run.error
    assert (run.step, run.total_steps, run.attempts) == (6, 6, 1)
    assert run.best_metric_name == "map" and run.best_metric_value is not None
    assert run.images_per_second and run.images_per_second > 0
    names = set(session.scalars(select(RunMetric.name).where(RunMetric.run_id == run.id)))
    tag_ids = [t["id"] for t in run.dataset_snapshot["tags"]]
    assert {"loss", "lr", "map", "micro_f1", "macro_f1"} <= names
    assert any(name.startswith("f1/") for name in names)
    val_steps = session.scalars(
        select(RunMetric.step).where(
            RunMetric.run_id == run.id, RunMetric.split == "val", RunMetric.name == "loss"
        )
    ).all()
    assert sorted(val_steps) == [3, 6]

    store = get_blob_store()
    checkpoints = {c.kind: c for c in session.scalars(
        select(Checkpoint).where(Checkpoint.run_id == run.id)
    )}  # fmt: skip
    assert set(checkpoints) == {"best", "last"}
    last = checkpoints["last"]
    assert last.storage_key == f"runs/{run.id}/checkpoints/last.pt"
    assert last.step == 6 and last.metric_name == "map" and "map" in last.metrics
    data = store.read_bytes(last.storage_key)
    assert (len(data), hashlib.sha256(data).hexdigest()) == (last.bytes, last.sha256)

    evaluations = {e.split: e for e in session.scalars(
        select(Evaluation).where(Evaluation.run_id == run.id)
    )}  # fmt: skip
    assert set(evaluations) == {"train", "val"}
    for split, evaluation in evaluations.items():
        assert evaluation.checkpoint_id == checkpoints["best"].id
        assert evaluation.scores_key == f"runs/{run.id}/scores_{split}.npz"
        assert evaluation.thresholds == {"default": 0.5}
        arrays = np.load(io.BytesIO(store.read_bytes(evaluation.scores_key)))
        n = run.dataset_snapshot["counts"][split]
        assert arrays["asset_ids"].dtype == np.int64 and arrays["asset_ids"].shape == (n,)
        assert arrays["tag_ids"].tolist() == tag_ids
        assert arrays["scores"].dtype == np.float32 and arrays["scores"].shape == (n, 10)
        assert arrays["truth"].dtype == np.uint8 and arrays["truth"].shape == (n, 10)
        assert evaluation.metrics["counts"]["images"] == n
        assert "map" in evaluation.metrics["summary"]
        truth = np.asarray(evaluation.cooccurrence["truth"])
        assert truth.shape == (10, 10)
        assert np.array_equal(np.diag(truth), arrays["truth"].sum(axis=0))
        assert np.asarray(evaluation.cooccurrence["predicted"]).shape == (10, 10)
    # A duplicate delivery for the finished run exits quietly.
    assert run_training.run(run.id) == "skipped"
    assert celery_worker.poll() is None


@pytest.mark.slow
def test_cancel_stops_a_running_run(
    session: Session, digits: Project, celery_worker: subprocess.Popen[bytes]
) -> None:
    run = _start(session, digits, length=100_000, eval_interval=1000)
    wait_for(lambda: run_status(session, run.id).step >= 2, timeout=300, what="training steps")
    run_service.cancel(session=session, run=run_status(session, run.id))
    wait_for(
        lambda: run_status(session, run.id).status == "cancelled", timeout=30, what="the cancel"
    )
    run = run_status(session, run.id)
    assert run.finished_at is not None and run.step < 100_000
    messages = session.scalars(select(RunLog.message).where(RunLog.run_id == run.id)).all()
    assert "stopped: cancelled by a user" in messages


@pytest.mark.slow
def test_a_killed_worker_never_leaves_a_run_running(
    session: Session, digits: Project, workers: list[WorkerProcess]
) -> None:
    fast = {"POLYTAG_HEARTBEAT_INTERVAL_S": "0.5"}
    first = WorkerProcess(fast)
    workers.append(first)
    run = _start(session, digits, length=24, eval_interval=6)

    def has_last_checkpoint() -> bool:
        return session.scalar(
            select(Checkpoint.step).where(Checkpoint.run_id == run.id, Checkpoint.kind == "last")
        ) is not None and run_status(session, run.id).step >= 7

    wait_for(has_last_checkpoint, timeout=300, what="a checkpoint")
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(timeout=10)
    assert run_status(session, run.id).status == "running"

    # The second worker gives up on the dead one after 20 seconds instead of two minutes (it
    # takes a run over after 15s, and reaps it after 20s), and on Redis it gets the unacked
    # message back after a short visibility timeout.
    second = WorkerProcess({**fast, "POLYTAG_STALE_RUN_AFTER_S": "20",
                            "POLYTAG_BROKER_VISIBILITY_TIMEOUT_S": "2"})  # fmt: skip
    workers.append(second)
    wait_for(
        lambda: run_status(session, run.id).status != "running", timeout=300,
        what="a resume or a failure",
    )  # fmt: skip
    run = run_status(session, run.id)
    messages = session.scalars(select(RunLog.message).where(RunLog.run_id == run.id)).all()
    if REDIS:
        assert run.status == "succeeded", (run.error, second.output()[-3000:])
        assert run.attempts == 2 and run.step == 24
        assert any("resuming from the last checkpoint at step" in m for m in messages)
        losses = session.scalars(select(RunMetric.step).where(
            RunMetric.run_id == run.id, RunMetric.split == "train", RunMetric.name == "loss"
        )).all()  # fmt: skip
        assert sorted(losses) == list(range(1, 25))  # no step recorded twice
    else:
        assert run.status == "failed"
        assert "stopped responding: no heartbeat" in (run.error or "")
        assert run.error in messages
    assert os.environ.get("POLYTAG_STALE_RUN_AFTER_S") is None  # the test process is untouched
