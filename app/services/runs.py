"""Training runs: start (freeze the inputs, commit, then queue), cancel, read, reap.

A run freezes its workflow (graph and trainer config) and its dataset (images, storage keys,
tags, labels, split, label hash) when it starts, so later edits change nothing about it. The
worker side of a run lives in `app.services.run_progress`; the UI reads everything here from the
database, never from Celery.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from app.config import settings
from app.errors import Conflict, InvalidInput, NotFound
from app.models import (
    Checkpoint,
    Evaluation,
    Project,
    RunLog,
    RunMetric,
    TrainingRun,
    User,
    Workflow,
    utcnow,
)
from app.services import jobs
from app.services import workflows as workflow_service
from app.services.training_data import dataset_snapshot, plan_dataset

TRAIN_TASK = "worker.tasks.train.run_training"
FINISHED = ("succeeded", "failed", "cancelled")
MAX_METRIC_ROWS = 20_000
MAX_LOG_ROWS = 2_000

logger = logging.getLogger(__name__)


def start_run(
    *,
    session: Session,
    project: Project,
    workflow: Workflow,
    user: User | None = None,
    name: str | None = None,
) -> TrainingRun:
    """Check the workflow, freeze it and its dataset into a queued run, commit, then queue it."""
    graph = workflow_service.parse_graph(workflow.graph)
    plan = plan_dataset(session=session, project=project, block=graph.dataset)
    check = workflow_service.check_plan(session=session, project=project, graph=graph, plan=plan)
    if check.errors:
        more = f" (and {len(check.errors) - 1} more)" if len(check.errors) > 1 else ""
        raise InvalidInput(
            f"workflow '{workflow.name}' cannot start: {check.errors[0]}{more}",
            details={"errors": check.errors, "warnings": check.warnings},
        )
    config = workflow_service.build_train_config(graph, train_images=plan.train_count)
    config.input_size = check.input_size  # freeze the registry default too
    run = TrainingRun(
        project_id=project.id,
        workflow_id=workflow.id,
        name=(name or "").strip()[:200] or f"{workflow.name} v{workflow.version}",
        workflow_snapshot={
            "workflow_id": workflow.id,
            "name": workflow.name,
            "version": workflow.version,
            "graph": graph.model_dump(mode="json"),
            "train_config": config.to_dict(),
        },
        dataset_snapshot=dataset_snapshot(plan, graph.dataset),
        status="queued",
        total_steps=check.estimated_steps or 0,
        created_by_id=user.id if user else None,
    )
    session.add(run)
    session.flush()
    who = f" by {user.email}" if user else ""
    lines = [
        f"queued{who}: {config.arch} at {config.input_size}px, {plan.train_count} train / "
        f"{plan.val_count} val images, {len(plan.tags)} tags",
        *(f"warning: {warning}" for warning in check.warnings),
    ]
    session.add_all(RunLog(run_id=run.id, message=line) for line in lines)
    session.commit()
    _enqueue(session, run)
    return run


def _enqueue(session: Session, run: TrainingRun) -> None:
    try:
        jobs.enqueue(TRAIN_TASK, run.id, queue="train")
    except Exception as exc:
        # Without a message no worker will ever pick the run up: say so instead of hanging.
        logger.exception("could not queue run %s", run.id)
        run.status = "failed"
        run.finished_at = utcnow()
        run.error = f"could not reach the job queue ({exc}); start the run again"
        session.commit()
        raise


def get_all(*, session: Session, project: Project) -> list[TrainingRun]:
    """The project's runs, newest first."""
    return list(
        session.scalars(
            select(TrainingRun)
            .where(TrainingRun.project_id == project.id)
            .order_by(TrainingRun.id.desc())
        )
    )


def get(*, session: Session, project: Project, run_id: int) -> TrainingRun:
    """One run of the project, or NotFound."""
    run = session.get(TrainingRun, run_id)
    if run is None or run.project_id != project.id:
        raise NotFound(f"run {run_id} not found in project '{project.name}'")
    return run


def get_by_id(*, session: Session, run_id: int) -> TrainingRun:
    """A run by id alone (the event stream's URL has no project), or NotFound."""
    run = session.get(TrainingRun, run_id)
    if run is None:
        raise NotFound(f"run {run_id} not found")
    return run


def cancel(*, session: Session, run: TrainingRun, user: User | None = None) -> TrainingRun:
    """Cancel a queued run at once, or ask a running one to stop at its next step."""
    now = utcnow()
    who = f" by {user.email}" if user else ""
    queued = session.execute(
        update(TrainingRun)
        .where(TrainingRun.id == run.id, TrainingRun.status == "queued")
        .values(status="cancelled", cancel_requested=True, finished_at=now)
        .execution_options(synchronize_session=False)
    )
    if queued.rowcount == 1:  # type: ignore[attr-defined]
        session.add(RunLog(run_id=run.id, message=f"cancelled before it started{who}"))
    else:
        running = session.execute(
            update(TrainingRun)
            .where(TrainingRun.id == run.id, TrainingRun.status == "running")
            .values(cancel_requested=True)
            .execution_options(synchronize_session=False)
        )
        if running.rowcount != 1:  # type: ignore[attr-defined]
            session.rollback()
            session.refresh(run)
            raise Conflict(f"run {run.id} has already {run.status}; there is nothing to cancel")
        session.add(RunLog(run_id=run.id, message=f"cancel requested{who}"))
    session.commit()
    session.refresh(run)
    return run


def delete(*, session: Session, run: TrainingRun) -> None:
    """Delete a finished run with its metrics, checkpoints and files."""
    if run.status not in FINISHED:
        raise Conflict(f"run {run.id} is {run.status}; cancel it before deleting it")
    run_id = run.id
    session.delete(run)
    session.commit()
    jobs.enqueue("maintenance.delete_prefixes", [f"runs/{run_id}/"])


def get_metrics(
    *,
    session: Session,
    run: TrainingRun,
    since_step: int | None = None,
    after_id: int | None = None,
    names: Sequence[str] = (),
    split: str | None = None,
) -> list[RunMetric]:
    """Metric rows of a run in recording order, optionally after a step or a row id."""
    query = select(RunMetric).where(RunMetric.run_id == run.id)
    if since_step is not None:
        query = query.where(RunMetric.step > since_step)
    if after_id is not None:
        query = query.where(RunMetric.id > after_id)
    if names:
        query = query.where(RunMetric.name.in_(list(names)))
    if split is not None:
        query = query.where(RunMetric.split == split)
    return list(session.scalars(query.order_by(RunMetric.id).limit(MAX_METRIC_ROWS)))


def get_logs(
    *, session: Session, run: TrainingRun, after_id: int = 0, limit: int = MAX_LOG_ROWS
) -> list[RunLog]:
    """Log lines of a run after row `after_id`, oldest first."""
    return list(
        session.scalars(
            select(RunLog)
            .where(RunLog.run_id == run.id, RunLog.id > after_id)
            .order_by(RunLog.id)
            .limit(min(limit, MAX_LOG_ROWS))
        )
    )


def get_checkpoints(*, session: Session, run: TrainingRun) -> list[Checkpoint]:
    """The run's checkpoints (best, last)."""
    return list(
        session.scalars(
            select(Checkpoint).where(Checkpoint.run_id == run.id).order_by(Checkpoint.kind)
        )
    )


def get_evaluations(*, session: Session, run: TrainingRun) -> list[Evaluation]:
    """The run's stored evaluations (one per split once it has succeeded)."""
    return list(
        session.scalars(
            select(Evaluation).where(Evaluation.run_id == run.id).order_by(Evaluation.id)
        )
    )


@dataclass
class RunEvents:
    """What changed in a run since the cursors: its row, new metrics, new log lines."""

    run: TrainingRun
    metrics: list[RunMetric] = field(default_factory=list)
    logs: list[RunLog] = field(default_factory=list)
    checkpoints: list[Checkpoint] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        """Whether the run has ended."""
        return self.run.status in FINISHED


def poll_events(
    *, session: Session, run_id: int, after_metric_id: int, after_log_id: int
) -> RunEvents:
    """One poll of the dashboard's event stream, read from the database."""
    session.expire_all()
    run = get_by_id(session=session, run_id=run_id)
    return RunEvents(
        run=run,
        metrics=get_metrics(session=session, run=run, after_id=after_metric_id),
        logs=get_logs(session=session, run=run, after_id=after_log_id),
        checkpoints=get_checkpoints(session=session, run=run),
    )


def reap_stale_runs(
    *, session: Session, stale_after_s: float | None = None, now: datetime | None = None
) -> list[int]:
    """Fail running runs whose heartbeat is older than `stale_after_s` (or end them as
    cancelled if a cancel was pending); returns their ids."""
    # Only `running` runs: a queued one, new or handed back by a stopping worker (see
    # run_progress.hand_back), has no worker to lose and waits for the next one.
    stale_after_s = settings.stale_run_after_s if stale_after_s is None else stale_after_s
    now = now or utcnow()
    cutoff = now - timedelta(seconds=stale_after_s)
    stale = or_(
        TrainingRun.heartbeat_at < cutoff,
        and_(TrainingRun.heartbeat_at.is_(None), TrainingRun.started_at < cutoff),
    )
    candidates = session.execute(
        select(
            TrainingRun.id, TrainingRun.heartbeat_at, TrainingRun.worker_hostname,
            TrainingRun.step, TrainingRun.cancel_requested,
        ).where(TrainingRun.status == "running", stale)
    ).all()  # fmt: skip
    reaped = []
    for run_id, heartbeat_at, hostname, step, cancelled in candidates:
        seen = heartbeat_at.isoformat(timespec="seconds") if heartbeat_at else "never"
        lost = (
            f"the worker ({hostname or 'unknown'}) stopped responding: no heartbeat since {seen} "
            f"(more than {stale_after_s:.0f}s), at step {step}"
        )
        # A run somebody was cancelling ends as they asked; any other run failed.
        status, error = ("cancelled", None) if cancelled else (
            "failed", f"{lost}; the run was marked failed — start the workflow again"
        )
        message = f"cancelled: {lost}" if cancelled else str(error)
        # Re-checked in the UPDATE itself: a heartbeat that just arrived keeps the run alive.
        result = session.execute(
            update(TrainingRun)
            .where(TrainingRun.id == run_id, TrainingRun.status == "running", stale)
            .values(status=status, error=error, finished_at=now)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            session.add(RunLog(run_id=run_id, level="info" if cancelled else "error",
                               message=message))  # fmt: skip
            reaped.append(run_id)
    session.commit()
    return reaped
