"""Runs: start freezes and queues after commit, cancel, the reaper, and the worker's claim."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import new_session
from app.errors import Conflict, InvalidInput
from app.models import RunLog, RunMetric, TrainingRun, utcnow
from app.services import jobs, run_progress
from app.services import runs as run_service
from app.services import tags as tag_service
from app.services import workflows as workflow_service
from tests.fixtures.training import TINY_ARCH, add_asset, tiny_graph


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """Records what would be sent to the broker, and whether the run was committed by then."""
    sent: list[tuple[Any, ...]] = []

    def enqueue(task_name: str, *args: Any, queue: str = "default") -> str:
        committed = False
        if isinstance(args[0], int):
            with new_session() as other:  # another connection sees only committed rows
                committed = other.get(TrainingRun, args[0]) is not None
        sent.append((task_name, args, queue, committed))
        return "task-id"

    monkeypatch.setattr(jobs, "enqueue", enqueue)
    return sent


@pytest.fixture
def labeled(session, project, make_tag):  # type: ignore[no-untyped-def]
    cat, dog = make_tag("cat"), make_tag("dog")
    for row in [(cat,), (dog,), (cat, dog), (cat,), (dog,), (), (cat,), (dog,)]:
        add_asset(session, project, tags=row)
    return cat, dog


@pytest.fixture
def workflow(session, project, labeled):  # type: ignore[no-untyped-def]
    cat, dog = labeled
    return workflow_service.create(
        session=session, project=project, name="tiny", graph=tiny_graph([cat.id, dog.id])
    )


def _start(session: Session, project, workflow, user=None) -> TrainingRun:  # type: ignore[no-untyped-def]
    return run_service.start_run(session=session, project=project, workflow=workflow, user=user)


def test_start_freezes_inputs_commits_then_queues(
    session, project, workflow, labeled, user, queued
) -> None:
    run = _start(session, project, workflow, user)
    assert queued == [(run_service.TRAIN_TASK, (run.id,), "train", True)]
    assert run.status == "queued"
    snapshot = run.dataset_snapshot
    assert [t["name"] for t in snapshot["tags"]] == ["cat", "dog"]
    assets = snapshot["assets"]
    assert len(assets["ids"]) == 8
    assert assets["split"].count("val") == 2
    assert all(key.startswith(f"projects/{project.id}/assets/") for key in assets["keys"])
    assert sorted(map(len, assets["labels"])) == [0, 1, 1, 1, 1, 1, 1, 2]
    assert len(snapshot["label_hash"]) == 64
    config = run.workflow_snapshot["train_config"]
    assert (config["arch"], config["input_size"], config["max_steps"]) == (TINY_ARCH, 32, 6)
    assert run.workflow_snapshot["version"] == workflow.version
    assert run.total_steps == 6
    assert "queued by admin@example.com" in session.scalars(select(RunLog.message)).first()

    # Later edits change nothing about the run.
    tag_service.update(session=session, project=project, tag=labeled[0], name="kitten")
    workflow_service.update(session=session, workflow=workflow, graph=tiny_graph([labeled[1].id]))
    session.expire_all()
    again = session.get(TrainingRun, run.id)
    assert again.dataset_snapshot == snapshot
    assert again.workflow_snapshot["train_config"] == config


def test_same_data_gives_the_same_label_hash(session, project, workflow, queued) -> None:
    first, second = _start(session, project, workflow), _start(session, project, workflow)
    assert first.dataset_snapshot["label_hash"] == second.dataset_snapshot["label_hash"]


def test_an_invalid_workflow_is_refused_before_anything_is_queued(
    session, project, labeled, queued, make_tag
) -> None:
    empty = make_tag("unused")
    workflow = workflow_service.create(
        session=session, project=project, name="bad", graph=tiny_graph([empty.id, labeled[0].id])
    )
    with pytest.raises(InvalidInput, match="cannot start: tag 'unused' has no positive") as error:
        _start(session, project, workflow)
    assert error.value.details["errors"]
    assert queued == []
    assert session.scalar(select(TrainingRun.id)) is None


def test_a_broker_failure_fails_the_run_with_a_message(
    session, project, workflow, monkeypatch
) -> None:
    def broken(*_args: Any, **_kwargs: Any) -> str:
        raise ConnectionError("connection refused")

    monkeypatch.setattr(jobs, "enqueue", broken)
    with pytest.raises(ConnectionError):
        _start(session, project, workflow)
    run = session.scalars(select(TrainingRun)).one()
    assert run.status == "failed"
    assert "could not reach the job queue" in (run.error or "")


def test_cancel_a_queued_run_ends_it_at_once(session, project, workflow, queued) -> None:
    run = _start(session, project, workflow)
    run_service.cancel(session=session, run=run)
    assert (run.status, run.cancel_requested) == ("cancelled", True)
    assert run.finished_at is not None
    with new_session() as other:  # the worker's claim now finds nothing to do
        assert run_progress.claim_run(
            session=other, run_id=run.id, hostname="w", stale_after_s=60
        ) is None
    with pytest.raises(Conflict, match="already cancelled"):
        run_service.cancel(session=session, run=run)


def test_cancel_a_running_run_sets_the_flag(session, project, workflow, queued) -> None:
    run = _start(session, project, workflow)
    claim = run_progress.claim_run(session=session, run_id=run.id, hostname="w", stale_after_s=60)
    assert claim is not None
    assert run_progress.run_state(session=session, run_id=run.id, attempt=claim.attempt) == "own"
    run_service.cancel(session=session, run=run)
    assert (run.status, run.cancel_requested) == ("running", True)
    assert run_progress.run_state(session=session, run_id=run.id, attempt=claim.attempt) == "cancel"


def test_claim_takes_queued_runs_once_and_stale_ones_over(
    session, project, workflow, queued
) -> None:
    run = _start(session, project, workflow)
    first = run_progress.claim_run(session=session, run_id=run.id, hostname="a", stale_after_s=60)
    assert first == run_progress.Claim(run_id=run.id, attempt=1, resumed=False)
    # A duplicate delivery while the first worker is alive gets nothing.
    assert run_progress.claim_run(
        session=session, run_id=run.id, hostname="b", stale_after_s=60
    ) is None
    # Once its heartbeat is stale, another worker takes over and the first one is locked out.
    run = session.get(TrainingRun, run.id)
    run.heartbeat_at = utcnow() - timedelta(seconds=120)
    session.commit()
    second = run_progress.claim_run(session=session, run_id=run.id, hostname="b", stale_after_s=60)
    assert second == run_progress.Claim(run_id=run.id, attempt=2, resumed=True)
    assert not run_progress.beat(session=session, run_id=run.id, attempt=1, step=5)
    assert run_progress.run_state(session=session, run_id=run.id, attempt=1) == "lost"
    assert not run_progress.finish(
        session=session, run_id=run.id, attempt=1, status="succeeded"
    )
    assert run_progress.beat(session=session, run_id=run.id, attempt=2, step=3, total_steps=6)
    assert run_progress.finish(
        session=session, run_id=run.id, attempt=2, status="succeeded", step=6
    )
    session.expire_all()
    assert (run.status, run.step, run.worker_hostname) == ("succeeded", 6, "b")
    # A duplicate for a finished run exits quietly.
    assert run_progress.claim_run(
        session=session, run_id=run.id, hostname="c", stale_after_s=0
    ) is None


def test_a_run_that_keeps_losing_its_worker_is_failed(session, project, workflow, queued) -> None:
    run = _start(session, project, workflow)
    run.status, run.attempts = "running", run_progress.MAX_ATTEMPTS
    run.heartbeat_at = utcnow() - timedelta(hours=1)
    session.commit()
    assert run_progress.claim_run(
        session=session, run_id=run.id, hostname="x", stale_after_s=60
    ) is None
    session.expire_all()
    assert run.status == "failed"
    assert "stopped 3 times" in (run.error or "")


def test_reaper_fails_stale_runs_and_says_why(session, project, workflow, queued) -> None:
    stale, fresh, silent = (_start(session, project, workflow) for _ in range(3))
    now = utcnow()
    for run, beat in ((stale, now - timedelta(minutes=10)), (fresh, now), (silent, None)):
        run.status, run.worker_hostname, run.step = "running", "gpu-1", 42
        run.heartbeat_at = beat
        run.started_at = now - timedelta(minutes=10)
    session.commit()
    reaped = run_service.reap_stale_runs(session=session, stale_after_s=120)
    assert sorted(reaped) == sorted([stale.id, silent.id])
    session.expire_all()
    assert (stale.status, fresh.status, silent.status) == ("failed", "running", "failed")
    assert "worker (gpu-1) stopped responding" in (stale.error or "")
    assert "at step 42" in (stale.error or "")
    lines = session.scalars(
        select(RunLog.message).where(RunLog.run_id == stale.id, RunLog.level == "error")
    ).all()
    assert lines == [stale.error]
    assert run_service.reap_stale_runs(session=session, stale_after_s=120) == []


def test_reaper_ends_a_run_being_cancelled_as_cancelled(session, project, workflow, queued) -> None:
    run = _start(session, project, workflow)
    run.status, run.cancel_requested = "running", True
    run.heartbeat_at = utcnow() - timedelta(minutes=10)
    session.commit()
    assert run_service.reap_stale_runs(session=session, stale_after_s=120) == [run.id]
    session.expire_all()
    assert (run.status, run.error) == ("cancelled", None)


def test_metrics_since_a_step_and_by_name(session, project, workflow, queued) -> None:
    run = _start(session, project, workflow)
    for step in (1, 2, 3):
        run_progress.add_metrics(
            session=session, run_id=run.id, step=step, split="train", values={"loss": 1 / step}
        )
    run_progress.add_metrics(
        session=session, run_id=run.id, step=3, split="val", values={"loss": 0.5, "map": 0.7}
    )
    rows = run_service.get_metrics(session=session, run=run, since_step=1)
    assert [(r.step, r.split, r.name) for r in rows] == [
        (2, "train", "loss"), (3, "train", "loss"), (3, "val", "loss"), (3, "val", "map")
    ]
    rows = run_service.get_metrics(session=session, run=run, names=["map"])
    assert [r.value for r in rows] == [0.7]
    # A resumed run forgets what came after its checkpoint.
    run_progress.discard_progress_after(session=session, run_id=run.id, step=2)
    steps = session.scalars(select(RunMetric.step).where(RunMetric.run_id == run.id)).all()
    assert sorted(steps) == [1, 2]


def test_delete_refuses_unfinished_runs(session, project, workflow, queued) -> None:
    run = _start(session, project, workflow)
    with pytest.raises(Conflict, match="cancel it before deleting"):
        run_service.delete(session=session, run=run)
    run_service.cancel(session=session, run=run)
    run_service.delete(session=session, run=run)
    assert session.get(TrainingRun, run.id) is None
    assert queued[-1][0] == "maintenance.delete_prefixes"
    assert queued[-1][1] == ([f"runs/{run.id}/"],)
