"""The `train` queue's task: claim a run, train it with `worker.training`, record the outcome.

Claiming is one conditional UPDATE (queued → running). A delivery for a finished or cancelled
run exits quietly. A delivery for a running run waits: if that run's heartbeat goes stale
(its worker died and the broker handed the message on — a prefork child killed, or a Redis
visibility timeout), this worker takes it over and resumes from the `last` checkpoint in blob
storage; if the heartbeat stays fresh, another worker is alive on it and this delivery ends.

A worker asked to stop (SIGTERM: `docker compose stop`, `polytag serve` exiting) stops the
trainer at its next step, puts the run back to `queued` at its `last` checkpoint and rejects the
message with requeue (worker/shutdown.py), so the next worker to start claims the run again and
resumes it. Both brokers hand a rejected message out again at once: Redis pushes it back on the
queue, kombu's SQLAlchemy transport inserts it again as a new visible row
(tests/worker/test_train_task.py stops and restarts real workers on each).
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy import select

from app.config import settings
from app.db import session_scope
from app.deps import get_blob_store
from app.models import Checkpoint, TrainingRun
from app.services import run_progress
from app.services.runs import TRAIN_TASK
from app.storage import BlobNotFound, BlobStore
from worker.celery_app import celery_app
from worker.shutdown import requeue_for_restart, worker_stopping
from worker.tasks.train_io import DatabaseSink, Heartbeat, SnapshotData, checkpoint_key
from worker.tasks.train_io import store_evaluations as build_evaluations
from worker.training.checkpoint import Checkpoint as TrainerCheckpoint
from worker.training.checkpoint import CheckpointKind, LocalCheckpointStore
from worker.training.config import TrainConfig
from worker.training.loop import train
from worker.training.models import get_arch
from worker.training.sink import TrainResult

logger = logging.getLogger(__name__)

# A running run is taken over once its heartbeat is this fraction of the reaper's limit old,
# so a redelivered task resumes the run before the reaper would fail it.
TAKEOVER_FRACTION = 0.75
# Below this many training images, augmenting in the training process beats forking workers.
SMALL_DATASET = 512
WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")


@celery_app.task(
    name=TRAIN_TASK, bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True
)
def run_training(self: Any, run_id: int) -> str:
    """Train run `run_id`; returns what happened (succeeded, failed, cancelled, skipped, lost),
    or hands the message back to the broker when this worker is stopping."""
    if worker_stopping():  # e.g. the message this worker just requeued, delivered to it again
        logger.info("run %s: this worker is stopping; the message goes back to the queue", run_id)
        requeue_for_restart()
    hostname = str(getattr(self.request, "hostname", None) or socket.gethostname())
    claim = claim_or_wait(run_id, hostname)
    if claim is None:
        return "skipped"
    outcome = execute(claim, hostname)
    if outcome == "requeued":
        # Raised here, outside execute's `except Exception`, which would swallow celery's Reject.
        requeue_for_restart()
    return outcome


def claim_or_wait(run_id: int, hostname: str) -> run_progress.Claim | None:
    """Claim the run, waiting while another worker's heartbeat on it may be going stale."""
    takeover_after = settings.stale_run_after_s * TAKEOVER_FRACTION
    deadline = time.monotonic() + settings.stale_run_after_s
    poll = min(1.0, settings.heartbeat_interval_s)
    while True:
        with session_scope() as session:
            claim = run_progress.claim_run(
                session=session, run_id=run_id, hostname=hostname, stale_after_s=takeover_after
            )
            status = session.scalar(select(TrainingRun.status).where(TrainingRun.id == run_id))
        if claim is not None:
            return claim
        if status == "running" and worker_stopping():
            # Keep the message: the worker alive on the run may still die before it ends.
            requeue_for_restart()
        if status != "running" or time.monotonic() >= deadline:
            logger.info("run %s is %s: this delivery has nothing to do", run_id, status or "gone")
            return None
        time.sleep(poll)


def execute(claim: run_progress.Claim, hostname: str) -> str:
    """Run the trainer for a claimed run and record how it ended."""
    store = get_blob_store()
    work_root = settings.data_dir / "work"
    work_root.mkdir(parents=True, exist_ok=True)
    work_dir = Path(tempfile.mkdtemp(prefix=f"run-{claim.run_id}-", dir=work_root))
    heartbeat = Heartbeat(
        run_id=claim.run_id, attempt=claim.attempt, interval=settings.heartbeat_interval_s
    )
    heartbeat.start()
    try:
        with session_scope() as session:
            run = session.get(TrainingRun, claim.run_id)
            assert run is not None  # claimed a moment ago; runs are deleted only when finished
            workflow_snapshot, dataset_snapshot = run.workflow_snapshot, run.dataset_snapshot
        data = SnapshotData(dataset_snapshot, store)
        config = machine_config(
            TrainConfig.from_dict(workflow_snapshot["train_config"]), len(data.rows["train"])
        )
        sink = DatabaseSink(
            run_id=claim.run_id, attempt=claim.attempt, batch_size=config.batch_size, store=store
        )
        checkpoints = LocalCheckpointStore(work_dir / "checkpoints")
        resume = None
        if claim.resumed:
            resume = fetch_for_resume(claim, store, checkpoints, hostname, sink)
        else:
            sink.log(f"started on {hostname}")
        input_size = config.input_size or get_arch(config.arch).input_size

        def should_stop() -> bool:
            return worker_stopping() or sink.should_cancel()

        result = train(
            config,
            data.train_data(input_size=input_size, work_dir=work_dir),
            sink,
            checkpoints,
            should_cancel=should_stop,
            resume=resume,
        )
        stopped = result.status == "cancelled" and not sink.lost and worker_stopping()
        if stopped and hand_back(claim, heartbeat):
            return "requeued"
        return record_result(claim, config, data, sink, result, store)
    except Exception as exc:
        # A stopping worker's failure is most likely the stop itself (data loader processes
        # killed by the same signal): resume the run rather than fail it.
        if worker_stopping() and hand_back(claim, heartbeat):
            logger.warning("run %s: error while the worker stops; requeued", claim.run_id,
                           exc_info=True)  # fmt: skip
            return "requeued"
        logger.exception("run %s failed", claim.run_id)
        record_failure(claim, exc)
        return "failed"
    finally:
        heartbeat.stop()
        shutil.rmtree(work_dir, ignore_errors=True)


def hand_back(claim: run_progress.Claim, heartbeat: Heartbeat) -> bool:
    """Queue the run again at its last checkpoint (the worker is stopping); False if it is no
    longer ours or a user asked to cancel it, which then ends the run as usual."""
    heartbeat.stop()
    heartbeat.join(timeout=30)  # no beat of this attempt may land after the hand-back
    try:
        with session_scope() as session:
            step = run_progress.hand_back(
                session=session, run_id=claim.run_id, attempt=claim.attempt
            )
    except Exception:
        # Requeue the message all the same: the run stays `running` without a heartbeat, and
        # the worker that gets the message next takes it over once the heartbeat is stale.
        logger.exception("could not put run %s back in the queue", claim.run_id)
        return True
    if step is None:
        return False
    logger.info("run %s: worker stopping; requeued to resume from step %s", claim.run_id, step)
    return True


def machine_config(config: TrainConfig, train_images: int) -> TrainConfig:
    """Set the knobs that belong to this worker, not to the workflow."""
    config.device = "auto"
    config.heartbeat_seconds = settings.heartbeat_interval_s
    cpus = os.cpu_count() or 1
    config.num_workers = 0 if train_images < SMALL_DATASET else min(config.num_workers, cpus)
    if config.pretrained and settings.weights_dir is not None:
        config.weights_file = find_weights_file(settings.weights_dir, config.arch)
    return config


def find_weights_file(directory: Path, arch: str) -> str | None:
    """A configured weights file for `arch` (named after the arch or its timm model), if any."""
    names = {arch, get_arch(arch).timm_name}
    for name in sorted(names):
        for suffix in WEIGHT_SUFFIXES:
            path = directory / f"{name}{suffix}"
            if path.is_file():
                return str(path)
    return None


def fetch_for_resume(
    claim: run_progress.Claim,
    store: BlobStore,
    checkpoints: LocalCheckpointStore,
    hostname: str,
    sink: DatabaseSink,
) -> TrainerCheckpoint | None:
    """Download the run's checkpoints; return `last` to resume from (None: start over)."""
    kinds: tuple[CheckpointKind, ...] = ("best", "last")
    for kind in kinds:
        target = checkpoints.path(kind)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        try:
            source = store.open(checkpoint_key(claim.run_id, kind))
        except BlobNotFound:
            continue
        with source, partial.open("wb") as out:
            shutil.copyfileobj(source, out, 1024 * 1024)
        partial.replace(target)
    last = checkpoints.load("last")
    step = last.step if last is not None else 0
    with session_scope() as session:
        run_progress.discard_progress_after(session=session, run_id=claim.run_id, step=step)
    where = f"from the last checkpoint at step {step}" if last else "from the start (no checkpoint)"
    why = "picked up after a worker stop" if claim.handed_back else "the previous worker stopped"
    sink.log(f"attempt {claim.attempt} on {hostname}: {why}; resuming {where}")
    return last


def record_result(
    claim: run_progress.Claim,
    config: TrainConfig,
    data: SnapshotData,
    sink: DatabaseSink,
    result: TrainResult,
    store: BlobStore,
) -> str:
    """Write the final status; for a success also the score matrices and evaluations."""
    if sink.lost:
        logger.warning("run %s was taken over by another worker; leaving it", claim.run_id)
        return "lost"
    # The best checkpoint as recorded, not `result.best`: that describes only checkpoints this
    # attempt wrote, so a resumed run that never beat its earlier best would report none.
    with session_scope() as session:
        best = session.execute(
            select(Checkpoint.id, Checkpoint.step, Checkpoint.metric_value).where(
                Checkpoint.run_id == claim.run_id, Checkpoint.kind == "best"
            )
        ).first()
    best_name = config.monitor if best is not None else None
    best_value = best.metric_value if best is not None else None
    if result.status == "cancelled":
        sink.log("stopped: cancelled by a user")
        with session_scope() as session:
            run_progress.finish(
                session=session, run_id=claim.run_id, attempt=claim.attempt,
                status="cancelled", step=result.step, best_metric_name=best_name,
                best_metric_value=best_value,
            )  # fmt: skip
        return "cancelled"
    evaluations = build_evaluations(
        run_id=claim.run_id,
        data=data,
        evaluations=result.evaluations,
        checkpoint_id=best.id if best is not None else None,
        best_step=best.step if best is not None else None,
        store=store,
    )
    with session_scope() as session:
        finished = run_progress.finish(
            session=session, run_id=claim.run_id, attempt=claim.attempt,
            status="succeeded", step=result.step, best_metric_name=config.monitor,
            best_metric_value=best_value, images_per_second=sink.images_per_second(),
            evaluations=evaluations,
        )  # fmt: skip
    return "succeeded" if finished else "lost"


def record_failure(claim: run_progress.Claim, exc: Exception) -> None:
    """Fail the run with a message a user can act on, and log it."""
    if isinstance(exc, SoftTimeLimitExceeded):
        message = f"the run reached the worker's time limit ({settings.train_time_limit_s}s)"
    elif isinstance(exc, ValueError | FloatingPointError | OSError):
        message = str(exc) or type(exc).__name__
    else:
        message = f"{type(exc).__name__}: {exc}"
    try:
        with session_scope() as session:
            run_progress.add_log(
                session=session, run_id=claim.run_id, message=f"failed: {message}", level="error"
            )
            run_progress.finish(
                session=session, run_id=claim.run_id, attempt=claim.attempt, status="failed",
                error=message,
            )  # fmt: skip
    except Exception:  # the reaper fails the run later if the database is unreachable now
        logger.exception("could not record the failure of run %s", claim.run_id)
