"""Deployments: a run's checkpoint exported to ONNX, verified, and served with its thresholds.

Life of a deployment: ``pending`` (queued) -> ``exporting`` (claimed by the export task) ->
``live`` (ONNX Runtime agreed with PyTorch within ``MAX_VERIFY_DIFF``) or ``failed``. Only live,
active deployments answer predictions; one per project is the default. Files sit beside each
other under ``projects/<project>/deployments/<id>/``: ``model-<token>.onnx`` (a new name per
export, so no process serves a stale cached model), ``labels.json``, ``thresholds.json``,
``preprocessing.json`` and optionally ``model-<token>.int8.onnx`` (see ``deployment_files``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.errors import Conflict, InvalidInput, NotFound
from app.inference.sessions import OnnxModel, models
from app.models import Checkpoint, Deployment, Project, Tag, TrainingRun
from app.services import evaluations as evaluation_service
from app.services.deployment_files import prefix, write_sidecar_files
from app.services.jobs import enqueue
from app.services.score_matrices import asset_storage_keys
from app.storage import BlobStore

MAX_VERIFY_DIFF = 1e-4
VERIFY_SAMPLES = 8
INT8_SAMPLES = 256


def get_all(*, session: Session, project: Project) -> list[Deployment]:
    """The project's deployments, newest first."""
    return list(
        session.scalars(
            select(Deployment)
            .where(Deployment.project_id == project.id)
            .order_by(Deployment.id.desc())
        )
    )


def get(*, session: Session, deployment_id: int) -> Deployment:
    """A deployment, or NotFound naming its id."""
    deployment = session.get(Deployment, deployment_id)
    if deployment is None:
        raise NotFound(f"deployment {deployment_id} not found")
    return deployment


def deployable_checkpoints(*, session: Session, project: Project) -> list[dict[str, Any]]:
    """The project's checkpoints a deployment can be made from, newest run first."""
    rows = session.execute(
        select(Checkpoint, TrainingRun)
        .join(TrainingRun, TrainingRun.id == Checkpoint.run_id)
        .where(TrainingRun.project_id == project.id)
        .order_by(TrainingRun.id.desc(), Checkpoint.kind)
    ).all()
    return [
        {
            "run_id": run.id,
            "run_name": run.name or f"run {run.id}",
            "kind": checkpoint.kind,
            "step": checkpoint.step,
            "metric_name": checkpoint.metric_name,
            "metric_value": checkpoint.metric_value,
        }
        for checkpoint, run in rows
    ]


def get_default(*, session: Session, project: Project) -> Deployment:
    """The project's default live deployment (else its newest live one), or NotFound."""
    live = [d for d in get_all(session=session, project=project) if d.status == "live" and d.active]
    if not live:
        raise NotFound(
            f"project '{project.name}' has no live deployment: deploy a run's checkpoint first"
        )
    return next((d for d in live if d.is_default), live[0])


def create(
    *,
    session: Session,
    project: Project,
    run_id: int,
    kind: str = "best",
    name: str = "",
    make_default: bool = False,
    quantize: bool = False,
) -> Deployment:
    """Queue the export of a run's best or last checkpoint as a new deployment."""
    run = evaluation_service.get_run(session=session, project=project, run_id=run_id)
    checkpoint = evaluation_service.get_checkpoint(session=session, run=run, kind=kind)
    name = " ".join(name.split())[:200]
    latest = session.scalar(
        select(func.max(Deployment.version)).where(Deployment.project_id == project.id)
    )
    deployment = Deployment(
        project_id=project.id,
        run_id=run.id,
        checkpoint_id=checkpoint.id,
        name=name or f"{run.name or f'run {run.id}'} ({kind})",
        version=int(latest or 0) + 1,
        status="pending",
        active=True,
        is_default=False,
    )
    session.add(deployment)
    session.commit()
    enqueue("deployments.export", deployment.id, make_default, quantize)
    return deployment


@dataclass
class ExportPlan:
    """What the export task needs, read from the database when it claims the deployment."""

    deployment_id: int
    checkpoint_key: str
    sample_keys: list[str] = field(default_factory=list)
    # Validation images and truth to measure an INT8 model on (tag ids in score-column order).
    val_keys: list[str] = field(default_factory=list)
    val_truth: list[list[int]] = field(default_factory=list)
    val_tag_ids: list[int] = field(default_factory=list)


def claim_export(*, session: Session, store: BlobStore, deployment_id: int) -> ExportPlan | None:
    """Move a pending deployment to ``exporting`` and plan the export; None if not pending."""
    claimed = session.execute(
        update(Deployment)
        .where(Deployment.id == deployment_id, Deployment.status == "pending")
        .values(status="exporting")
    )
    session.commit()
    if getattr(claimed, "rowcount", 0) != 1:
        return None
    deployment = get(session=session, deployment_id=deployment_id)
    checkpoint = (
        session.get(Checkpoint, deployment.checkpoint_id) if deployment.checkpoint_id else None
    )
    if checkpoint is None:
        fail_export(session=session, deployment_id=deployment_id, error="its checkpoint is gone")
        return None
    return validation_plan(
        session=session,
        store=store,
        checkpoint_id=checkpoint.id,
        plan=ExportPlan(deployment_id, checkpoint.storage_key),
    )


def validation_plan(
    *, session: Session, store: BlobStore, checkpoint_id: int, plan: ExportPlan
) -> ExportPlan:
    """Fill the plan's sample and validation images from the run's stored val evaluation."""
    reference = evaluation_service.scoring_reference(
        session=session, checkpoint_id=checkpoint_id, split="val"
    )
    if reference is None:
        return plan
    matrix = evaluation_service.load_scores(store=store, evaluation=reference)
    ids = [int(i) for i in matrix.asset_ids[:INT8_SAMPLES].tolist()]
    keys = asset_storage_keys(session=session, asset_ids=ids)
    present = [index for index, asset_id in enumerate(ids) if asset_id in keys]
    plan.val_keys = [keys[ids[index]] for index in present]
    plan.val_truth = matrix.truth[present].astype(int).tolist()
    plan.val_tag_ids = [int(t) for t in matrix.tag_ids.tolist()]
    plan.sample_keys = plan.val_keys[:VERIFY_SAMPLES]
    return plan


def label_rows(
    *, session: Session, project_id: int, label_keys: list[str], label_names: list[str]
) -> list[dict[str, Any]]:
    """The model's outputs as labels: key, tag id (keys are tag ids) and the current tag name."""
    ids = [int(key) if str(key).isdigit() else None for key in label_keys]
    tags = {
        tag.id: tag
        for tag in session.scalars(
            select(Tag).where(Tag.project_id == project_id, Tag.id.in_([i for i in ids if i]))
        )
    }
    rows = []
    for key, name, tag_id in zip(label_keys, label_names, ids, strict=True):
        tag = tags.get(tag_id) if tag_id is not None else None
        rows.append({"key": str(key), "tag_id": tag_id, "name": tag.name if tag else str(name)})
    return rows


def finish_export(
    *,
    session: Session,
    store: BlobStore,
    deployment_id: int,
    onnx_key: str,
    metadata: dict[str, Any],
    max_diff: float,
    make_default: bool,
) -> Deployment:
    """Record a verified export, write its labels/thresholds/preprocessing files, go live."""
    deployment = get(session=session, deployment_id=deployment_id)
    project = session.get(Project, deployment.project_id)
    assert project is not None  # a deployment is deleted with its project
    labels = label_rows(
        session=session,
        project_id=project.id,
        label_keys=list(metadata["label_keys"]),
        label_names=list(metadata["label_names"]),
    )
    by_tag: dict[int, float] = {}
    if deployment.run_id is not None and deployment.checkpoint_id is not None:
        kind = session.get(Checkpoint, deployment.checkpoint_id)
        by_tag = evaluation_service.thresholds_by_tag(
            session=session, store=store, project=project, run_id=deployment.run_id,
            kind=kind.kind if kind else "best",
        )  # fmt: skip
    default = evaluation_service.DEFAULT_THRESHOLD
    deployment.labels = labels
    deployment.thresholds = [float(by_tag.get(row["tag_id"], default)) for row in labels]
    deployment.preprocessing = {
        "input_size": int(metadata["input_size"]),
        "arch": metadata.get("arch"),
        **dict(metadata.get("preprocess") or {}),
    }
    deployment.onnx_key = onnx_key
    deployment.verify_max_diff = max_diff
    write_sidecar_files(store=store, deployment=deployment)
    if max_diff > MAX_VERIFY_DIFF:
        deployment.status = "failed"
        deployment.error = (
            f"ONNX Runtime and PyTorch disagree by {max_diff:.2e} (allowed {MAX_VERIFY_DIFF:.0e})"
            "; the deployment was not put live"
        )
        session.commit()
        return deployment
    has_default = session.scalar(
        select(func.count(Deployment.id)).where(
            Deployment.project_id == project.id,
            Deployment.is_default.is_(True),
            Deployment.status == "live",
        )
    )
    deployment.status = "live"
    deployment.error = None
    if make_default or not has_default:
        _make_default(session, deployment)
    session.commit()
    return deployment


def fail_export(*, session: Session, deployment_id: int, error: str) -> None:
    """Mark a deployment failed with a message the user can act on."""
    deployment = session.get(Deployment, deployment_id)
    if deployment is None:
        return
    deployment.status = "failed"
    deployment.error = error[:2000]
    deployment.active = False
    session.commit()


def record_int8(
    *, session: Session, deployment_id: int, int8_key: str | None, report: dict[str, Any]
) -> None:
    """Record the INT8 copy of a deployment's model and its measured metric change."""
    deployment = get(session=session, deployment_id=deployment_id)
    deployment.int8_key = int8_key
    deployment.int8_report = report
    session.commit()


def request_int8(*, session: Session, deployment: Deployment) -> Deployment:
    """Queue building the INT8 copy of a live deployment's model."""
    if deployment.status != "live" or not deployment.onnx_key:
        raise Conflict(f"deployment {deployment.id} is {deployment.status}, not live")
    deployment.int8_report = {"status": "queued"}
    session.commit()
    enqueue("deployments.quantize", deployment.id)
    return deployment


def _make_default(session: Session, deployment: Deployment) -> None:
    session.execute(
        update(Deployment)
        .where(Deployment.project_id == deployment.project_id, Deployment.id != deployment.id)
        .values(is_default=False)
    )
    deployment.is_default = True


def parse_thresholds(
    deployment: Deployment, overrides: dict[str, Any] | float | int | None
) -> list[float]:
    """The deployment's thresholds with overrides applied: one number for every tag, or
    {tag name or id: value}; InvalidInput names an unknown tag or a value outside [0, 1]."""
    thresholds = [float(t) for t in deployment.thresholds]
    if overrides is None:
        return thresholds
    if isinstance(overrides, dict):
        index: dict[str, int] = {}
        for position, label in enumerate(deployment.labels):
            index[str(label["name"]).lower()] = position
            if label.get("tag_id") is not None:
                index.setdefault(str(label["tag_id"]), position)
        for key, value in overrides.items():
            found = index.get(str(key).strip().lower())
            if found is None:
                known = ", ".join(str(label["name"]) for label in deployment.labels)
                raise InvalidInput(
                    f"thresholds: unknown tag '{key}' (this deployment has: {known})"
                )
            thresholds[found] = evaluation_service.check_threshold(
                value, f"threshold of tag '{key}'"
            )
        return thresholds
    value = evaluation_service.check_threshold(overrides, "threshold")
    return [value] * len(thresholds)


def update_deployment(
    *,
    session: Session,
    store: BlobStore,
    deployment: Deployment,
    name: str | None = None,
    active: bool | None = None,
    is_default: bool | None = None,
    thresholds: dict[str, Any] | float | None = None,
) -> Deployment:
    """Rename, (de)activate, make default or change thresholds; only given fields change."""
    if name is not None:
        cleaned = " ".join(name.split())
        if not cleaned:
            raise InvalidInput("the deployment name must not be empty")
        deployment.name = cleaned[:200]
    if active is not None:
        if active and deployment.status != "live":
            raise Conflict(f"deployment {deployment.id} is {deployment.status}; it cannot serve")
        deployment.active = active
    if is_default:
        if deployment.status != "live":
            raise Conflict(f"only a live deployment can be the default ({deployment.status})")
        _make_default(session, deployment)
    elif is_default is False:
        deployment.is_default = False
    if thresholds is not None:
        deployment.thresholds = parse_thresholds(deployment, thresholds)
        write_sidecar_files(store=store, deployment=deployment)
    session.commit()
    return deployment


def delete(*, session: Session, store: BlobStore, deployment: Deployment) -> None:
    """Delete a deployment, unload its model and remove its files."""
    keys = [k for k in (deployment.onnx_key, deployment.int8_key) if k]
    folder = prefix(deployment)
    session.delete(deployment)
    session.commit()
    for key in keys:
        models.discard(key)
    store.delete_prefix(folder)


def load_model(*, store: BlobStore, deployment: Deployment) -> OnnxModel:
    """The deployment's ONNX Runtime model, from the process cache or storage."""
    if deployment.status != "live" or not deployment.onnx_key:
        raise Conflict(
            f"deployment {deployment.id} is {deployment.status}, not live: it cannot predict yet"
            + (f" ({deployment.error})" if deployment.error else "")
        )
    if not deployment.active:
        raise Conflict(f"deployment {deployment.id} is switched off; activate it first")
    key = deployment.onnx_key
    return models.get(key, lambda: store.read_bytes(key))
