"""The worker's side of a training run in the database: claim, heartbeat, record, finish.

A worker owns a run through the `attempts` counter it set when it claimed the run: every write
it makes afterwards is conditional on `attempts` still being its own, so a worker that was given
up for dead (and replaced) can never overwrite its successor's progress. A stopping worker hands
its run back (`hand_back`: queued again at its `last` checkpoint); the next claim resumes it.
Each function commits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from sqlalchemy import and_, delete, func, not_, or_, select, update
from sqlalchemy.orm import Session

from app.models import Checkpoint, Evaluation, RunLog, RunMetric, TrainingRun, utcnow

# A run whose worker died this many times is failed instead of being resumed again.
MAX_ATTEMPTS = 3

RunState = Literal["own", "cancel", "lost"]


@dataclass(frozen=True)
class Claim:
    """A worker's hold on a run: `attempt` guards its writes; `resumed` if it goes on from the
    `last` checkpoint: it took the run over, or the run was `handed_back` by a stopping worker."""

    run_id: int
    attempt: int
    resumed: bool
    handed_back: bool = False


def claim_run(
    *, session: Session, run_id: int, hostname: str, stale_after_s: float
) -> Claim | None:
    """Take a queued run (resuming it if a stopping worker handed it back at a checkpoint), or
    take over a running one whose heartbeat is older than `stale_after_s`; None when the run is
    not ours to run (finished, cancelled, alive)."""
    now = utcnow()
    fresh = session.execute(
        update(TrainingRun)
        .where(TrainingRun.id == run_id, TrainingRun.status == "queued")
        .values(
            status="running",
            attempts=TrainingRun.attempts + 1,
            # A handed-back run keeps its first start, as a taken-over one does.
            started_at=func.coalesce(TrainingRun.started_at, now),
            heartbeat_at=now,
            worker_hostname=hostname[:255],
            error=None,
        )
        .execution_options(synchronize_session=False)
    )
    resumed = handed_back = False
    if fresh.rowcount == 1:  # type: ignore[attr-defined]
        handed_back = resumed = _last_checkpoint_step(session, run_id) is not None
    else:
        cutoff = now - timedelta(seconds=stale_after_s)
        taken = session.execute(
            update(TrainingRun)
            .where(
                TrainingRun.id == run_id,
                TrainingRun.status == "running",
                TrainingRun.attempts < MAX_ATTEMPTS,
                or_(TrainingRun.heartbeat_at.is_(None), TrainingRun.heartbeat_at < cutoff),
            )
            .values(
                attempts=TrainingRun.attempts + 1, heartbeat_at=now, worker_hostname=hostname[:255]
            )
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            _give_up_if_exhausted(session, run_id, cutoff)
            session.commit()
            return None
        resumed = True
    attempt = session.scalar(select(TrainingRun.attempts).where(TrainingRun.id == run_id))
    session.commit()
    return Claim(run_id=run_id, attempt=int(attempt or 0), resumed=resumed, handed_back=handed_back)


def _last_checkpoint_step(session: Session, run_id: int) -> int | None:
    return session.scalar(
        select(Checkpoint.step).where(Checkpoint.run_id == run_id, Checkpoint.kind == "last")
    )


def _give_up_if_exhausted(session: Session, run_id: int, cutoff: Any) -> None:
    # A run that keeps killing its worker (out of memory, say) must end, not loop forever.
    result = session.execute(
        update(TrainingRun)
        .where(
            TrainingRun.id == run_id,
            TrainingRun.status == "running",
            TrainingRun.attempts >= MAX_ATTEMPTS,
            or_(TrainingRun.heartbeat_at.is_(None), TrainingRun.heartbeat_at < cutoff),
        )
        .values(
            status="failed",
            finished_at=utcnow(),
            error=f"the run's worker stopped {MAX_ATTEMPTS} times; giving up (check the worker's "
            "memory and logs, then start the workflow again)",
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 1:  # type: ignore[attr-defined]
        session.add(
            RunLog(
                run_id=run_id,
                level="error",
                message=f"gave up after {MAX_ATTEMPTS} attempts: the worker stopped each time",
            )
        )


def _owned(run_id: int, attempt: int) -> Any:
    return and_(
        TrainingRun.id == run_id, TrainingRun.attempts == attempt, TrainingRun.status == "running"
    )


def run_state(*, session: Session, run_id: int, attempt: int) -> RunState:
    """Whether the worker still owns the run ('own'), should stop ('cancel'), or lost it."""
    row = session.execute(
        select(TrainingRun.status, TrainingRun.attempts, TrainingRun.cancel_requested).where(
            TrainingRun.id == run_id
        )
    ).first()
    session.rollback()  # end the read transaction: SQLite must not pin an old snapshot
    if row is None or row[0] != "running" or row[1] != attempt:
        return "lost"
    return "cancel" if row[2] else "own"


def beat(
    *,
    session: Session,
    run_id: int,
    attempt: int,
    step: int | None = None,
    total_steps: int | None = None,
) -> bool:
    """Refresh the heartbeat (and progress, when given); False if the run is no longer ours."""
    values: dict[str, Any] = {"heartbeat_at": utcnow()}
    if step is not None:
        values["step"] = step
    if total_steps is not None:
        values["total_steps"] = total_steps
    result = session.execute(
        update(TrainingRun)
        .where(_owned(run_id, attempt))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def add_metrics(
    *, session: Session, run_id: int, step: int, split: str, values: Mapping[str, float]
) -> None:
    """Record metric values measured at `step`."""
    session.add_all(
        RunMetric(run_id=run_id, step=step, split=split, name=name[:128], value=float(value))
        for name, value in values.items()
    )
    session.commit()


def add_log(*, session: Session, run_id: int, message: str, level: str = "info") -> None:
    """Append a line to the run's log."""
    session.add(RunLog(run_id=run_id, level=level, message=message))
    session.commit()


def discard_progress_after(*, session: Session, run_id: int, step: int) -> None:
    """Forget metrics after `step` (a resumed run records them again); at 0, checkpoints too."""
    _discard_after(session, run_id, step)
    session.commit()


def _discard_after(session: Session, run_id: int, step: int) -> None:
    session.execute(delete(RunMetric).where(RunMetric.run_id == run_id, RunMetric.step > step))
    session.execute(delete(Evaluation).where(Evaluation.run_id == run_id))
    if step == 0:
        session.execute(delete(Checkpoint).where(Checkpoint.run_id == run_id))


def hand_back(*, session: Session, run_id: int, attempt: int) -> int | None:
    """Queue a run this worker owns again at its `last` checkpoint, because the worker is
    stopping; returns that step (0: none yet), or None (nothing written) if the run is no longer
    ours or a user asked to cancel it."""
    step = _last_checkpoint_step(session, run_id) or 0
    result = session.execute(
        update(TrainingRun)
        .where(_owned(run_id, attempt), not_(TrainingRun.cancel_requested))
        .values(
            status="queued",
            step=step,
            # Queued runs are never reaped; a fresh heartbeat still says when the worker left.
            heartbeat_at=utcnow(),
            # A stop is not a lost worker: give the attempt back, so that MAX_ATTEMPTS counts
            # only workers that died. No write of this worker can follow (its trainer has
            # returned and its heartbeat thread is stopped), so the next claim may reuse it.
            attempts=TrainingRun.attempts - 1,
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        return None
    # The metrics after the checkpoint are trained again on resume: drop them now, as a
    # takeover does, so the queued run shows exactly the progress it will resume from.
    _discard_after(session, run_id, step)
    message = f"worker stopping: the run goes back to the queue and resumes from step {step}"
    session.add(RunLog(run_id=run_id, message=message))
    session.commit()
    return step


def save_checkpoint(
    *,
    session: Session,
    run_id: int,
    kind: str,
    step: int,
    metric_name: str | None,
    metric_value: float | None,
    metrics: Mapping[str, float],
    storage_key: str,
    sha256: str,
    size: int,
) -> Checkpoint:
    """Insert or replace the run's `best` or `last` checkpoint row."""
    row = session.scalar(
        select(Checkpoint).where(Checkpoint.run_id == run_id, Checkpoint.kind == kind)
    )
    if row is None:
        row = Checkpoint(run_id=run_id, kind=kind)
        session.add(row)
    row.step = step
    row.metric_name = metric_name
    row.metric_value = metric_value
    row.metrics = dict(metrics)
    row.storage_key = storage_key
    row.sha256 = sha256
    row.bytes = size
    row.created_at = utcnow()
    session.commit()
    return row


def finish(
    *,
    session: Session,
    run_id: int,
    attempt: int,
    status: str,
    error: str | None = None,
    step: int | None = None,
    best_metric_name: str | None = None,
    best_metric_value: float | None = None,
    images_per_second: float | None = None,
    evaluations: list[Evaluation] | None = None,
) -> bool:
    """End the run (succeeded, failed or cancelled) with its evaluations, in one transaction;
    False (and nothing written) if another worker owns the run now."""
    values: dict[str, Any] = {"status": status, "finished_at": utcnow(), "error": error}
    if step is not None:
        values["step"] = step
        if status == "succeeded":
            values["total_steps"] = step
    if best_metric_name is not None:
        values["best_metric_name"] = best_metric_name
        values["best_metric_value"] = best_metric_value
    if images_per_second is not None:
        values["images_per_second"] = images_per_second
    result = session.execute(
        update(TrainingRun)
        .where(_owned(run_id, attempt))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        return False
    if evaluations:
        session.execute(delete(Evaluation).where(Evaluation.run_id == run_id))
        session.add_all(evaluations)
    session.commit()
    return True
