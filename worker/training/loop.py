"""The training loop: ``train(config, dataset, sink, checkpoint_store, should_cancel, resume)``.

Decode the dataset once, build the model, step until the length (steps, epochs or time budget) is
reached or early stopping triggers, evaluating every ``eval_interval`` steps and checkpointing
``last`` (every evaluation) and ``best`` (by the monitored metric). At the end, score the train and
val sets with the best checkpoint's weights.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from worker.training.checkpoint import Checkpoint, CheckpointKind, CheckpointStore, SavedCheckpoint
from worker.training.config import TrainConfig
from worker.training.data import (
    CachedImages,
    ProgressThrottle,
    TrainData,
    build_augment,
    decode_images,
    iterate_batches,
)
from worker.training.estimate import planned_steps, steps_per_epoch
from worker.training.losses import build_loss
from worker.training.models import create_model, get_arch
from worker.training.runtime import (
    Runtime,
    build_optimizer,
    seed_everything,
    select_runtime,
    train_step,
)
from worker.training.schedule import LrSchedule
from worker.training.scoring import predict_logits, split_evaluation, validation_metrics
from worker.training.sink import MetricSink, Split, SplitEvaluation, StopReason, TrainResult


class TrainingCancelled(Exception):
    """Raised inside the trainer once ``should_cancel()`` returns true."""


@dataclass
class LoopState:
    """What changes from step to step (and is saved in checkpoints)."""

    step: int = 0
    train_seconds: float = 0.0
    best_value: float = -math.inf
    best_step: int | None = None
    evals_since_best: int = 0
    last_eval_step: int = -1
    stop_reason: StopReason | None = None
    saved: dict[CheckpointKind, SavedCheckpoint] = field(default_factory=dict)


@dataclass
class _Run:
    config: TrainConfig
    data: TrainData
    sink: MetricSink
    store: CheckpointStore
    runtime: Runtime
    model: nn.Module
    optimizer: torch.optim.Optimizer
    criterion: nn.Module
    schedule: LrSchedule
    train_images: torch.Tensor
    val_images: torch.Tensor
    input_size: int
    total_steps: int | None  # None for a time budget
    eval_every: int
    beat: _Heartbeat


def _never() -> bool:
    return False


def train(
    config: TrainConfig,
    dataset: TrainData,
    sink: MetricSink,
    checkpoint_store: CheckpointStore,
    should_cancel: Callable[[], bool] = _never,
    resume: Checkpoint | None = None,
) -> TrainResult:
    """Train one run to the end, cancellation or early stop.

    ``should_cancel`` is called before every step, so keep it cheap (e.g. a flag the caller
    refreshes with its heartbeat). ``resume`` continues a run from its checkpoint: same step
    count, optimizer, schedule and early-stopping state; the data order restarts with a fresh
    shuffle.
    """
    state = LoopState()
    batches = None
    try:
        run = _prepare(config, dataset, sink, checkpoint_store, should_cancel, resume, state)
        augment = build_augment(config.augmentations, run.input_size)
        batches = iterate_batches(
            CachedImages(run.train_images, dataset.train.labels, augment),
            config.batch_size,
            seed=config.seed + state.step,
            num_workers=config.num_workers,
            pin_memory=run.runtime.device.type == "cuda",
        )
        loss_sum, loss_steps = torch.zeros((), device=run.runtime.device), 0
        started = time.monotonic() - state.train_seconds
        state.stop_reason = _length_reached(run, state)  # a resumed run may be done already
        while state.stop_reason is None:
            if should_cancel():
                raise TrainingCancelled
            images, labels = next(batches)
            lr = run.schedule.apply(run.optimizer, state.step, _progress(run, state))
            loss_sum += train_step(
                run.model, run.optimizer, run.criterion, run.runtime, images, labels
            )
            loss_steps += 1
            state.step += 1
            state.train_seconds = time.monotonic() - started
            if state.step % config.log_interval == 0:
                _log_train_loss(run, state, float(loss_sum) / loss_steps, lr)
                loss_sum.zero_()
                loss_steps = 0
            if state.step % run.eval_every == 0:
                _evaluate(run, state)
            state.stop_reason = state.stop_reason or _length_reached(run, state)
            run.beat(state.step, _total_steps(run, state))
        if state.last_eval_step != state.step:
            _evaluate(run, state)
        return _finish(run, state)
    except TrainingCancelled:
        # Neutral wording: the caller knows whether a user cancelled or its worker is stopping.
        sink.log(f"stopped at step {state.step}")
        return TrainResult(
            status="cancelled",
            stop_reason="cancelled",
            step=state.step,
            best=state.saved.get("best"),
            last=state.saved.get("last"),
        )
    finally:
        if batches is not None:
            batches.close()  # stops DataLoader workers now rather than at garbage collection


def _prepare(
    config: TrainConfig,
    data: TrainData,
    sink: MetricSink,
    store: CheckpointStore,
    should_cancel: Callable[[], bool],
    resume: Checkpoint | None,
    state: LoopState,
) -> _Run:
    config.validate()
    data.validate()
    input_size = config.input_size or get_arch(config.arch).input_size
    if resume is not None:
        _check_resumable(resume, config, data, input_size)
    runtime = select_runtime(config)
    seed_everything(config.seed)
    sink.log(
        f"training {config.arch} at {input_size}px on {runtime.describe()}: "
        f"{len(data.train)} train / {len(data.val)} val images, {len(data.label_keys)} labels"
    )

    beat = _Heartbeat(sink, config.heartbeat_seconds)

    def alive() -> None:  # called after every decoded image; decoding can take minutes
        if should_cancel():
            raise TrainingCancelled
        beat(state.step, None)

    train_images = _decode(data, "train", input_size, alive, sink)
    val_images = _decode(data, "val", input_size, alive, sink)
    model = create_model(
        config.arch,
        len(data.label_keys),
        pretrained=config.pretrained and resume is None,
        weights_file=config.weights_file if resume is None else None,
        log=sink.log,
    )
    model = runtime.prepare_model(model)
    optimizer = build_optimizer(model, config, runtime)
    schedule = LrSchedule(config)
    if resume is not None:
        _restore(resume, model, optimizer, schedule, runtime, state)
        sink.log(f"resumed from the {resume.kind} checkpoint at step {resume.step}")
        seed_everything(config.seed + resume.step)  # fresh augmentation draws after a resume
    return _Run(
        config=config,
        data=data,
        sink=sink,
        store=store,
        runtime=runtime,
        model=model,
        optimizer=optimizer,
        criterion=build_loss(config),
        schedule=schedule,
        train_images=train_images,
        val_images=val_images,
        input_size=input_size,
        total_steps=planned_steps(config, len(data.train)),
        eval_every=config.eval_interval or steps_per_epoch(len(data.train), config.batch_size),
        beat=beat,
    )


def _decode(
    data: TrainData, split: Split, size: int, alive: Callable[[], None], sink: MetricSink
) -> torch.Tensor:
    images = data.train if split == "train" else data.val
    throttle = ProgressThrottle(len(images))

    def progress(done: int, total: int) -> None:
        alive()
        if throttle.due(done):
            sink.log(f"decoded {done}/{total} {split} images")

    cache_file = data.cache_dir / f"{split}_{size}px.u8" if data.cache_dir else None
    threads = os.cpu_count() or 2
    return decode_images(images, size, threads=threads, cache_file=cache_file, progress=progress)


def _restore(
    resume: Checkpoint,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    schedule: LrSchedule,
    runtime: Runtime,
    state: LoopState,
) -> None:
    model.load_state_dict(resume.model_state)
    optimizer.load_state_dict(resume.optimizer_state)
    schedule.load_state_dict(resume.schedule_state)
    if runtime.scaler is not None and resume.scaler_state:
        runtime.scaler.load_state_dict(resume.scaler_state)
    state.step = state.last_eval_step = resume.step
    state.train_seconds = resume.train_seconds
    state.best_value = resume.best_value
    state.best_step = resume.best_step
    state.evals_since_best = resume.evals_since_best


def _check_resumable(resume: Checkpoint, config: TrainConfig, data: TrainData, size: int) -> None:
    expected = (config.arch, size, list(data.label_keys))
    found = (resume.arch, resume.input_size, list(resume.label_keys))
    if expected != found:
        raise ValueError(
            f"checkpoint (arch, input size, labels) {found} does not match this run {expected}"
        )


def _progress(run: _Run, state: LoopState) -> float:
    if run.total_steps is not None:
        return state.step / run.total_steps
    budget = (run.config.time_budget_minutes or 0.0) * 60.0
    return state.train_seconds / budget


def _total_steps(run: _Run, state: LoopState) -> int | None:
    if run.total_steps is not None or state.train_seconds <= 0:
        return run.total_steps
    budget = (run.config.time_budget_minutes or 0.0) * 60.0
    return max(state.step, round(state.step * budget / state.train_seconds))


def _length_reached(run: _Run, state: LoopState) -> StopReason | None:
    if run.total_steps is not None:
        return "completed" if state.step >= run.total_steps else None
    return "time_budget" if _progress(run, state) >= 1.0 else None


def _log_train_loss(run: _Run, state: LoopState, loss: float, lr: float) -> None:
    if not math.isfinite(loss):
        raise FloatingPointError(
            f"training diverged: loss is {loss} at step {state.step} (try a lower lr)"
        )
    run.sink.log_metrics(state.step, "train", {"loss": loss, "lr": lr})


def _evaluate(run: _Run, state: LoopState) -> None:
    config = run.config
    logits = predict_logits(run.model, run.val_images, run.runtime, config.batch_size)
    metrics = validation_metrics(run.data.val.labels, logits, run.criterion, run.data.label_keys)
    run.sink.log_metrics(state.step, "val", metrics)
    value = metrics.get(config.monitor, -math.inf)
    run.schedule.on_eval(value)
    improved = value > state.best_value or state.best_step is None
    if improved:
        state.best_value = max(value, state.best_value)
        state.best_step = state.step
        state.evals_since_best = 0
    else:
        state.evals_since_best += 1
    state.last_eval_step = state.step
    run.sink.log(
        f"step {state.step}: val loss {metrics['loss']:.4f}, {config.monitor} {value:.4f}"
        f" (best {state.best_value:.4f})"
    )
    _save(run, state, "last", metrics, value)
    if improved:
        _save(run, state, "best", metrics, value)
    patience = config.early_stopping_patience
    if patience and state.evals_since_best >= patience:
        run.sink.log(f"early stopping: no {config.monitor} improvement in {patience} evaluations")
        state.stop_reason = "early_stopping"


def _save(
    run: _Run, state: LoopState, kind: CheckpointKind, metrics: dict[str, float], value: float
) -> None:
    checkpoint = Checkpoint(
        kind=kind,
        step=state.step,
        epoch=state.step // steps_per_epoch(len(run.data.train), run.config.batch_size),
        train_seconds=state.train_seconds,
        arch=run.config.arch,
        input_size=run.input_size,
        label_keys=[str(k) for k in run.data.label_keys],
        label_names=run.data.names,
        config=run.config.to_dict(),
        model_state=run.model.state_dict(),
        optimizer_state=run.optimizer.state_dict(),
        schedule_state=run.schedule.state_dict(),
        scaler_state=run.runtime.scaler.state_dict() if run.runtime.scaler else None,
        metrics=metrics,
        monitor=run.config.monitor,
        monitor_value=value,
        best_value=state.best_value,
        best_step=state.best_step if state.best_step is not None else state.step,
        evals_since_best=state.evals_since_best,
    )
    saved = run.store.save(checkpoint)
    state.saved[kind] = saved
    run.sink.on_checkpoint(saved)


def _finish(run: _Run, state: LoopState) -> TrainResult:
    best = run.store.load("best")
    if best is not None:
        run.model.load_state_dict(best.model_state)
        run.sink.log(f"scoring train and val images with the best checkpoint (step {best.step})")
    evaluations: dict[str, SplitEvaluation] = {}
    splits: list[tuple[Split, torch.Tensor, np.ndarray]] = [
        ("val", run.val_images, run.data.val.labels),
        ("train", run.train_images, run.data.train.labels),
    ]
    for split, images, labels in splits:
        logits = predict_logits(run.model, images, run.runtime, run.config.batch_size)
        evaluations[split] = split_evaluation(split, labels, logits, run.criterion)
    reason = state.stop_reason or "completed"
    run.sink.log(
        f"finished ({reason}) at step {state.step}; best {run.config.monitor}"
        f" {state.best_value:.4f} at step {state.best_step}"
    )
    run.sink.heartbeat(state.step, state.step)
    return TrainResult(
        status="succeeded",
        stop_reason=reason,
        step=state.step,
        best=state.saved.get("best"),
        last=state.saved.get("last"),
        evaluations=evaluations,
    )


class _Heartbeat:
    """Calls ``sink.heartbeat`` at most once per interval."""

    def __init__(self, sink: MetricSink, interval: float) -> None:
        self.sink = sink
        self.interval = interval
        self.last = -math.inf

    def __call__(self, step: int, total_steps: int | None) -> None:
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.sink.heartbeat(step, total_steps)
            self.last = now
