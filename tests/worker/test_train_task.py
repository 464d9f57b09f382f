"""The training task end to end through a real Celery worker: success, cancel, a killed worker,
a stopped worker; and in-process, the hand-back of a stopping worker.

What happens after a worker is killed depends on the broker. The embedded SQLAlchemy transport
marks a message invisible when it is delivered and never restores it, so the run can only be
failed by the reaper. Redis keeps unacked messages and hands them out again after the visibility
timeout, so a new worker resumes the run from its `last` checkpoint. A worker that is stopped
(SIGTERM) rejects its message with requeue, which both brokers deliver again at once.
"""

from __future__ import annotations

import hashlib
import io
import os
import signal
import subprocess
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from celery.exceptions import Reject
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.config import settings
from app.db import new_session
from app.deps import get_blob_store
from app.models import Checkpoint, Evaluation, Project, RunLog, RunMetric, TrainingRun, User
from app.services import demo as demo_service
from app.services import projects as project_service
from app.services import run_progress
from app.services import runs as run_service
from app.services import workflows as workflow_service
from tests.fixtures.training import (
    WorkerProcess,
    purge_broker,
    run_status,
    tiny_graph,
    wait_for,
)
from worker.tasks import train as train_task
from worker.tasks.train import run_training
from worker.training.sink import TrainResult

REDIS = settings.broker_url.startswith("redis")
# The worker is stopped right after the first checkpoint (step 40, a few seconds in), leaving
# 160 steps (10-30 s on a CPU, depending on load) for the stop to land in and the next to resume.
STOP_TEST_STEPS = 200
STOP_TEST_EVAL = 40


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


def _train_loss_steps(session: Session, run_id: int) -> list[int]:
    return sorted(session.scalars(select(RunMetric.step).where(
        RunMetric.run_id == run_id, RunMetric.split == "train", RunMetric.name == "loss"
    )))  # fmt: skip


def _messages(session: Session, run_id: int) -> list[str]:
    return list(session.scalars(
        select(RunLog.message).where(RunLog.run_id == run_id).order_by(RunLog.id)
    ))  # fmt: skip


def _last_checkpoint_step(session: Session, run_id: int) -> int | None:
    return session.scalar(
        select(Checkpoint.step).where(Checkpoint.run_id == run_id, Checkpoint.kind == "last")
    )


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


class StopWhen:
    """Stands in for `worker_stopping`: false until `condition()` holds once, then true."""

    def __init__(self, condition: Callable[[], bool]) -> None:
        self.condition = condition
        self.stopping = False

    def __call__(self) -> bool:
        self.stopping = self.stopping or self.condition()
        return self.stopping


def test_a_stopping_worker_hands_its_run_back_and_the_next_delivery_resumes_it(
    session: Session, digits: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = _start(session, digits, length=10, eval_interval=4)

    def trained_past_the_checkpoint() -> bool:  # step 6 is two steps past the `last` of step 4
        with new_session() as other:
            return 6 in _train_loss_steps(other, run.id)

    monkeypatch.setattr(train_task, "worker_stopping", StopWhen(trained_past_the_checkpoint))
    with pytest.raises(Reject) as rejected:
        run_training.run(run.id)
    assert rejected.value.requeue is True

    run = run_status(session, run.id)
    assert (run.status, run.step, run.attempts, run.finished_at) == ("queued", 4, 0, None)
    assert _last_checkpoint_step(session, run.id) == 4
    assert _train_loss_steps(session, run.id) == [1, 2, 3, 4]  # what comes after is retrained
    assert "worker stopping: the run goes back to the queue and resumes from step 4" in (
        _messages(session, run.id)
    )
    assert run_service.reap_stale_runs(session=session, stale_after_s=0) == []  # queued: kept

    # A delivery to a worker that is already stopping goes straight back, claiming nothing.
    monkeypatch.setattr(train_task, "worker_stopping", lambda: True)
    with pytest.raises(Reject):
        run_training.run(run.id)
    assert (run_status(session, run.id).status, run_status(session, run.id).attempts) == (
        "queued", 0
    )  # fmt: skip

    monkeypatch.setattr(train_task, "worker_stopping", lambda: False)
    assert run_training.run(run.id) == "succeeded"
    run = run_status(session, run.id)
    assert (run.status, run.step, run.attempts) == ("succeeded", 10, 1)
    assert _train_loss_steps(session, run.id) == list(range(1, 11))  # no step twice, none lost
    messages = _messages(session, run.id)
    assert any(m.endswith("picked up after a worker stop; resuming from the last checkpoint "
                          "at step 4") for m in messages)  # fmt: skip
    assert "resumed from the last checkpoint at step 4" in messages
    assert run.best_metric_value is not None


def test_a_delivery_waiting_on_a_live_run_goes_back_when_its_worker_stops(
    session: Session, digits: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = _start(session, digits)
    with new_session() as other:  # another worker runs it, with a fresh heartbeat
        run_progress.claim_run(session=other, run_id=run.id, hostname="gpu-2", stale_after_s=60)
    calls = iter([False, False, True])  # stopping once this delivery is waiting
    monkeypatch.setattr(train_task, "worker_stopping", lambda: next(calls))

    with pytest.raises(Reject):  # the message stays in case the other worker dies
        run_training.run(run.id)
    run = run_status(session, run.id)
    assert (run.status, run.attempts, run.worker_hostname) == ("running", 1, "gpu-2")


def test_a_failed_hand_back_still_requeues_the_message(
    session: Session, digits: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = _start(session, digits)

    def stopped(*_args: object, **_kwargs: object) -> TrainResult:
        monkeypatch.setattr(train_task, "worker_stopping", lambda: True)
        return TrainResult(status="cancelled", stop_reason="cancelled", step=2)

    def database_down(**_kwargs: object) -> int | None:
        raise OSError("connection refused")

    monkeypatch.setattr(train_task, "worker_stopping", lambda: False)
    monkeypatch.setattr(train_task, "train", stopped)
    monkeypatch.setattr(run_progress, "hand_back", database_down)

    with pytest.raises(Reject):  # the next worker takes the run over once its heartbeat is stale
        run_training.run(run.id)
    assert (run_status(session, run.id).status, run_status(session, run.id).attempts) == (
        "running", 1
    )  # fmt: skip


def test_a_cancel_wins_over_a_worker_stop(
    session: Session, digits: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = _start(session, digits)
    stopping = StopWhen(lambda: False)

    def cancelled_while_stopping(*_args: object, **_kwargs: object) -> TrainResult:
        run_service.cancel(session=session, run=run_status(session, run.id))
        stopping.stopping = True
        return TrainResult(status="cancelled", stop_reason="cancelled", step=2)

    monkeypatch.setattr(train_task, "worker_stopping", stopping)
    monkeypatch.setattr(train_task, "train", cancelled_while_stopping)

    assert run_training.run(run.id) == "cancelled"
    assert run_status(session, run.id).status == "cancelled"


def test_an_error_while_the_worker_stops_requeues_the_run(
    session: Session, digits: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = _start(session, digits)
    stopping = StopWhen(lambda: False)

    def data_loader_killed(*_args: object, **_kwargs: object) -> TrainResult:
        stopping.stopping = True  # the signal that stops the worker reached its data loaders
        raise RuntimeError("DataLoader worker (pid 123) exited unexpectedly")

    monkeypatch.setattr(train_task, "worker_stopping", stopping)
    monkeypatch.setattr(train_task, "train", data_loader_killed)

    with pytest.raises(Reject):
        run_training.run(run.id)
    run = run_status(session, run.id)
    assert (run.status, run.error, run.attempts) == ("queued", None, 0)


def test_a_resumed_run_that_never_beat_its_best_still_reports_it(
    session: Session, digits: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = _start(session, digits)
    with new_session() as other:  # the best of an earlier attempt, as the task records it
        run_progress.save_checkpoint(
            session=other, run_id=run.id, kind="best", step=3, metric_name="map",
            metric_value=0.75, metrics={"map": 0.75}, storage_key="runs/x/best.pt",
            sha256="0" * 64, size=1,
        )  # fmt: skip

    def no_new_best(*_args: object, **_kwargs: object) -> TrainResult:
        return TrainResult(status="succeeded", stop_reason="completed", step=6, best=None)

    monkeypatch.setattr(train_task, "train", no_new_best)

    assert run_training.run(run.id) == "succeeded"
    run = run_status(session, run.id)
    assert (run.best_metric_name, run.best_metric_value) == ("map", 0.75)


@pytest.mark.slow
def test_a_stopped_worker_requeues_its_run_and_the_next_worker_resumes_it(
    session: Session, digits: Project, workers: list[WorkerProcess]
) -> None:
    """SIGTERM to a real worker mid-run: it exits cleanly, the run waits in the queue at its
    checkpoint, and the next worker gets the message again and finishes the run from there."""
    first = WorkerProcess()
    workers.append(first)
    run = _start(session, digits, length=STOP_TEST_STEPS, eval_interval=STOP_TEST_EVAL)
    checkpoint = wait_for(
        lambda: _last_checkpoint_step(session, run.id), timeout=300, what="a `last` checkpoint"
    )

    first.process.send_signal(signal.SIGTERM)  # a warm shutdown, as `docker compose stop` sends
    assert first.process.wait(timeout=60) == 0, first.output()[-3000:]

    run = run_status(session, run.id)
    step = _last_checkpoint_step(session, run.id)
    assert step is not None and checkpoint <= step < STOP_TEST_STEPS, "stopped mid-run"
    assert (run.status, run.step, run.attempts) == ("queued", step, 0), first.output()[-3000:]
    assert max(_train_loss_steps(session, run.id)) == step  # later steps are trained again
    assert f"worker stopping: the run goes back to the queue and resumes from step {step}" in (
        _messages(session, run.id)
    )
    assert get_blob_store().exists(f"runs/{run.id}/checkpoints/last.pt")
    assert run_service.reap_stale_runs(session=session, stale_after_s=0) == []
    before_resume = session.scalar(select(func.max(RunMetric.id)))

    second = WorkerProcess()
    workers.append(second)
    wait_for(
        lambda: run_status(session, run.id).status in run_service.FINISHED, timeout=300,
        what="the resumed run to finish",
    )  # fmt: skip
    run = run_status(session, run.id)
    assert run.status == "succeeded", (run.error, second.output()[-3000:])
    assert (run.step, run.attempts) == (STOP_TEST_STEPS, 1)
    assert _train_loss_steps(session, run.id) == list(range(1, STOP_TEST_STEPS + 1))
    resumed_steps = session.scalars(select(RunMetric.step).where(
        RunMetric.run_id == run.id, RunMetric.split == "train", RunMetric.id > before_resume
    )).all()  # fmt: skip
    assert min(resumed_steps) == step + 1  # continued from the checkpoint, not from 0
    messages = _messages(session, run.id)
    assert f"resumed from the last checkpoint at step {step}" in messages
