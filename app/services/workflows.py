"""Training workflows: CRUD (a new version on every save), graph checks and estimates.

A workflow's graph is parsed with `app.schemas.workflows.WorkflowGraph`; `check` resolves it
against the project's current labels and says what would train, what blocks a start and how long
it should take. The backbone registry and the training config come from `worker.training`,
imported inside the functions: that package pulls in torch and timm, which the api should load
only once the builder is used, not at startup.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import InvalidInput, NotFound
from app.models import Project, Tag, TrainingRun, Workflow
from app.schemas.workflows import (
    ArchOption,
    TagCount,
    WorkflowCheck,
    WorkflowGraph,
)
from app.services.training_data import DatasetPlan, plan_dataset

if TYPE_CHECKING:
    from worker.training.config import TrainConfig

# Finished runs consulted for the measured training speed.
SPEED_SAMPLE_RUNS = 50


def archs() -> list[ArchOption]:
    """The supported backbones with their default input size (from the trainer's registry)."""
    from worker.training.models import ARCHS

    return [ArchOption(name=spec.name, input_size=spec.input_size) for spec in ARCHS.values()]


def default_input_size(arch: str) -> int:
    """The registry's default input size of `arch`, or InvalidInput naming the choices."""
    from worker.training.models import get_arch

    try:
        return get_arch(arch).input_size
    except ValueError as exc:
        raise InvalidInput(f"model.arch: {exc}") from None


def parse_graph(data: Any) -> WorkflowGraph:
    """Parse a stored or submitted graph; errors name the block and field."""
    if isinstance(data, WorkflowGraph):
        graph = data
    else:
        try:
            graph = WorkflowGraph.model_validate(data or {})
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "graph"
            raise InvalidInput(
                f"{where}: {first['msg']}",
                details=[
                    {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
                    for e in exc.errors()
                ],
            ) from None
    default_input_size(graph.model.arch)
    return graph


def default_graph(*, session: Session, project: Project) -> WorkflowGraph:
    """A graph that trains every active tag of the project with the default settings."""
    graph = WorkflowGraph()
    graph.dataset.tag_ids = list(
        session.scalars(
            select(Tag.id)
            .where(Tag.project_id == project.id, Tag.archived.is_(False))
            .order_by(Tag.position, Tag.id)
        )
    )
    return graph


def get_all(*, session: Session, project: Project) -> list[Workflow]:
    """The project's workflows, most recently changed first."""
    return list(
        session.scalars(
            select(Workflow)
            .where(Workflow.project_id == project.id)
            .order_by(Workflow.updated_at.desc(), Workflow.id.desc())
        )
    )


def get(*, session: Session, project: Project, workflow_id: int) -> Workflow:
    """One workflow of the project, or NotFound."""
    workflow = session.get(Workflow, workflow_id)
    if workflow is None or workflow.project_id != project.id:
        raise NotFound(f"workflow {workflow_id} not found in project '{project.name}'")
    return workflow


def _clean_name(name: str) -> str:
    name = " ".join(name.split())
    if not name:
        raise InvalidInput("the workflow name must not be empty")
    if len(name) > 200:
        raise InvalidInput("the workflow name must be at most 200 characters")
    return name


def create(
    *, session: Session, project: Project, name: str, graph: Any = None
) -> Workflow:
    """Save a new workflow (version 1); without a graph, the defaults for this project."""
    parsed = default_graph(session=session, project=project) if graph is None else parse_graph(
        graph
    )
    workflow = Workflow(
        project_id=project.id,
        name=_clean_name(name),
        version=1,
        graph=parsed.model_dump(mode="json"),
    )
    session.add(workflow)
    session.commit()
    return workflow


def update(
    *, session: Session, workflow: Workflow, name: str | None = None, graph: Any = None
) -> Workflow:
    """Rename and/or replace the graph; each save that changes something bumps the version."""
    changed = False
    if name is not None and _clean_name(name) != workflow.name:
        workflow.name = _clean_name(name)
        changed = True
    if graph is not None:
        parsed = parse_graph(graph).model_dump(mode="json")
        if parsed != workflow.graph:
            workflow.graph = parsed
            changed = True
    if changed:
        workflow.version += 1
    session.commit()
    return workflow


def delete(*, session: Session, workflow: Workflow) -> None:
    """Delete a workflow; runs keep their frozen copy of it."""
    session.delete(workflow)
    session.commit()


def log_interval(graph: WorkflowGraph, total_steps: int | None) -> int:
    """Steps between train-loss records: the graph's, else about 50 points per run (max 10)."""
    if graph.training.log_interval:
        return graph.training.log_interval
    if total_steps is None:
        return 10
    return max(1, min(10, total_steps // 50))


def build_train_config(graph: WorkflowGraph, *, train_images: int) -> TrainConfig:
    """The trainer's config for this graph (machine-specific knobs are left at defaults)."""
    from worker.training.config import TrainConfig
    from worker.training.estimate import planned_steps

    training = graph.training
    length: dict[str, Any]
    if training.length_unit == "steps":
        length = {"max_steps": max(1, round(training.length))}
    elif training.length_unit == "epochs":
        length = {"epochs": training.length}
    else:
        length = {"time_budget_minutes": training.length}
    augmentations = graph.augmentations.model_dump()
    try:
        config = TrainConfig.from_dict(
            {
                "arch": graph.model.arch,
                "input_size": graph.model.input_size,
                "pretrained": graph.model.pretrained,
                "batch_size": training.batch_size,
                **length,
                "lr": training.lr,
                "weight_decay": training.weight_decay,
                "optimizer": training.optimizer,
                "momentum": training.momentum,
                "schedule": training.schedule,
                "warmup_steps": training.warmup_steps,
                "loss": training.loss,
                "eval_interval": training.eval_interval,
                "early_stopping_patience": training.early_stopping_patience,
                "monitor": training.monitor,
                "augmentations": augmentations,
                "seed": graph.dataset.seed,
            }
        )
    except ValueError as exc:
        raise InvalidInput(f"training: {exc}") from None
    config.log_interval = log_interval(graph, planned_steps(config, max(train_images, 1)))
    return config


def measured_images_per_second(*, session: Session, arch: str, input_size: int) -> float | None:
    """Training speed of this backbone and size on this installation, from finished runs.

    Runs at another input size of the same backbone count too, scaled by pixel count.
    """
    rows = session.execute(
        select(TrainingRun.images_per_second, TrainingRun.workflow_snapshot)
        .where(TrainingRun.status == "succeeded", TrainingRun.images_per_second.is_not(None))
        .order_by(TrainingRun.finished_at.desc())
        .limit(SPEED_SAMPLE_RUNS)
    ).all()
    scaled: float | None = None
    for rate, snapshot in rows:
        config = (snapshot or {}).get("train_config") or {}
        if config.get("arch") != arch or not rate or rate <= 0:
            continue
        size = int(config.get("input_size") or input_size)
        if size == input_size:
            return float(rate)
        if scaled is None:
            scaled = float(rate) * (size / input_size) ** 2
    return scaled


def check(*, session: Session, project: Project, graph: Any) -> WorkflowCheck:
    """Resolve a graph against the project now: errors, warnings, counts and estimates."""
    parsed = parse_graph(graph)
    plan = plan_dataset(session=session, project=project, block=parsed.dataset)
    return check_plan(session=session, project=project, graph=parsed, plan=plan)


def check_plan(
    *, session: Session, project: Project, graph: WorkflowGraph, plan: DatasetPlan
) -> WorkflowCheck:
    """The check of an already resolved dataset plan (also used when a run starts)."""
    from worker.training.estimate import (
        estimate_duration_seconds,
        evaluations_in,
        planned_steps,
        steps_per_epoch,
    )

    errors, warnings = list(plan.errors), list(plan.warnings)
    train_images, val_images = plan.train_count, plan.val_count
    batch = graph.training.batch_size
    if train_images and batch > train_images:
        errors.append(
            f"batch size {batch} is larger than the {train_images} training images; "
            f"use a batch size of at most {train_images}"
        )
    input_size = graph.model.input_size or default_input_size(graph.model.arch)
    steps: int | None = None
    epoch_steps: int | None = None
    seconds: float | None = None
    rate = measured_images_per_second(
        session=session, arch=graph.model.arch, input_size=input_size
    )
    if train_images >= 2:
        config = build_train_config(graph, train_images=train_images)
        epoch_steps = steps_per_epoch(train_images, min(batch, train_images))
        steps = planned_steps(config, train_images)
        if steps is None:
            minutes = graph.training.length
            seconds = minutes * 60.0
            if rate:
                steps = max(1, math.floor(rate * seconds / batch))
        elif rate:
            eval_every = graph.training.eval_interval or epoch_steps
            seconds = estimate_duration_seconds(
                total_steps=steps,
                batch_size=min(batch, train_images),
                train_images_per_second=rate,
                val_images=val_images,
                evaluations=evaluations_in(steps, eval_every),
            )
    positives = plan.split_positives()
    selected = {tag.id for tag in plan.tags}
    tags = [
        TagCount(
            id=tag.id,
            name=tag.name,
            color=tag.color,
            selected=tag.id in selected,
            positives=plan.positives.get(tag.id, 0),
            train_positives=positives.get(tag.id, (0, 0))[0],
            val_positives=positives.get(tag.id, (0, 0))[1],
        )
        for tag in session.scalars(
            select(Tag)
            .where(Tag.project_id == project.id, Tag.archived.is_(False))
            .order_by(Tag.position, Tag.id)
        )
    ]
    return WorkflowCheck(
        errors=errors,
        warnings=warnings,
        labeled_images=plan.labeled_images,
        train_images=train_images,
        val_images=val_images,
        tags=tags,
        input_size=input_size,
        steps_per_epoch=epoch_steps,
        estimated_steps=steps,
        estimated_seconds=seconds,
        measured_images_per_second=rate,
    )

