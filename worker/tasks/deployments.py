"""Deployment export: checkpoint -> ONNX, verified against PyTorch on sample images before it
goes live; and the optional dynamic-INT8 copy with its measured metric change."""

from __future__ import annotations

import logging
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from onnxruntime.quantization import QuantType, quantize_dynamic

from app.db import session_scope
from app.deps import get_blob_store
from app.evaluation import json_ready, summary_metrics
from app.inference.preprocess import normalize_uint8_batch, preprocess
from app.inference.sessions import OnnxModel
from app.services import deployment_files
from app.services import deployments as deployment_service
from app.storage import BlobStore
from worker.celery_app import celery_app
from worker.tasks.evaluations import download
from worker.training.export import export_onnx, verify_onnx

logger = logging.getLogger(__name__)
RANDOM_SAMPLES = 2


def verification_inputs(store: BlobStore, keys: list[str], size: int) -> np.ndarray:
    """Real project images through the shared preprocessing, plus a few random ones."""
    real = [preprocess(store.read_bytes(key), size) for key in keys]
    rng = np.random.default_rng(0)
    noise = normalize_uint8_batch(
        rng.integers(0, 256, size=(RANDOM_SAMPLES, 3, size, size), dtype=np.uint8)
    )
    return np.concatenate([np.stack(real), noise]) if real else noise


def score_with(model_path: Path, inputs: np.ndarray) -> np.ndarray:
    """Scores of normalised inputs with an ONNX file, in batches of 16."""
    model = OnnxModel(str(model_path))
    try:
        return np.concatenate(
            [model.run_direct(inputs[i : i + 16]) for i in range(0, len(inputs), 16)]
        )
    finally:
        model.close()


def int8_report(
    fp32_path: Path, int8_path: Path, inputs: np.ndarray, truth: np.ndarray | None,
    thresholds: list[float],
) -> dict[str, Any]:  # fmt: skip
    """How much the INT8 model's scores and metrics move from the float32 model's."""
    fp32 = score_with(fp32_path, inputs)
    int8 = score_with(int8_path, inputs)
    report: dict[str, Any] = {
        "status": "ready",
        "images": len(inputs),
        "max_abs_score_diff": float(np.abs(fp32 - int8).max()) if len(inputs) else 0.0,
        "mean_abs_score_diff": float(np.abs(fp32 - int8).mean()) if len(inputs) else 0.0,
        "bytes": {"fp32": fp32_path.stat().st_size, "int8": int8_path.stat().st_size},
    }
    if truth is not None and len(truth):
        names = ("map", "micro_f1", "macro_f1", "subset_accuracy")
        before = summary_metrics(truth, fp32, np.asarray(thresholds))
        after = summary_metrics(truth, int8, np.asarray(thresholds))
        report["metrics"] = json_ready(
            {
                name: {"fp32": before[name], "int8": after[name],
                       "change": after[name] - before[name]}
                for name in names
            }
        )  # fmt: skip
    return report


def build_int8(store: BlobStore, deployment_id: int, fp32_path: Path, work: Path) -> None:
    """Quantize the model (dynamic INT8 weights), measure it on validation images, store it."""
    with session_scope() as session:
        deployment = deployment_service.get(session=session, deployment_id=deployment_id)
        plan = deployment_service.ExportPlan(deployment_id, "")
        folder = deployment_files.prefix(deployment)
        thresholds = [float(t) for t in deployment.thresholds]
        label_tags = [label.get("tag_id") for label in deployment.labels]
        size = int(deployment.preprocessing["input_size"])
        if deployment.checkpoint_id is not None:
            plan = deployment_service.validation_plan(
                session=session, store=store, checkpoint_id=deployment.checkpoint_id,
                plan=plan,
            )  # fmt: skip
    int8_path = work / "model.int8.onnx"
    quantize_dynamic(str(fp32_path), str(int8_path), weight_type=QuantType.QUInt8)
    truth = None
    inputs = verification_inputs(store, [], size)
    if plan.val_keys and all(t in plan.val_tag_ids for t in label_tags):
        inputs = np.stack([preprocess(store.read_bytes(key), size) for key in plan.val_keys])
        columns = [plan.val_tag_ids.index(t) for t in label_tags]
        truth = np.asarray(plan.val_truth, dtype=np.uint8)[:, columns]
    report = int8_report(fp32_path, int8_path, inputs, truth, thresholds)
    key = f"{folder}model-{uuid.uuid4().hex[:12]}.int8.onnx"
    with int8_path.open("rb") as stream:
        store.put(key, stream, "application/octet-stream")
    with session_scope() as session:
        deployment_service.record_int8(
            session=session, deployment_id=deployment_id, int8_key=key, report=report
        )


@celery_app.task(name="deployments.export", acks_late=True)
def export_deployment(
    deployment_id: int, make_default: bool = False, quantize: bool = False
) -> str:
    """Export, verify and put live a pending deployment; a redelivered task exits quietly."""
    store = get_blob_store()
    with session_scope() as session:
        plan = deployment_service.claim_export(
            session=session, store=store, deployment_id=deployment_id
        )
        if plan is None:
            return "not pending"
        deployment = deployment_service.get(session=session, deployment_id=deployment_id)
        folder = deployment_files.prefix(deployment)
    work = Path(tempfile.mkdtemp(prefix="polytag-export-"))
    try:
        checkpoint_path = download(store, plan.checkpoint_key, work, "checkpoint.pt")
        onnx_path = work / "model.onnx"
        metadata = export_onnx(checkpoint_path, onnx_path)
        inputs = verification_inputs(store, plan.sample_keys, int(metadata["input_size"]))
        max_diff = verify_onnx(checkpoint_path, onnx_path, inputs)
        # A fresh name per export: no process can serve a stale cached model under it.
        onnx_key = f"{folder}model-{uuid.uuid4().hex[:12]}.onnx"
        with onnx_path.open("rb") as stream:
            store.put(onnx_key, stream, "application/octet-stream")
        with session_scope() as session:
            deployment = deployment_service.finish_export(
                session=session, store=store, deployment_id=deployment_id, onnx_key=onnx_key,
                metadata=metadata, max_diff=max_diff, make_default=make_default,
            )  # fmt: skip
            status = deployment.status
        if status == "live" and quantize:
            build_int8(store, deployment_id, onnx_path, work)
        return status
    except Exception as error:
        logger.exception("export of deployment %s failed", deployment_id)
        with session_scope() as session:
            deployment_service.fail_export(
                session=session, deployment_id=deployment_id, error=f"export failed: {error}"
            )
        return "failed"
    finally:
        shutil.rmtree(work, ignore_errors=True)


@celery_app.task(name="deployments.quantize", acks_late=True)
def quantize_deployment(deployment_id: int) -> str:
    """Build the INT8 copy of a live deployment's model and measure its metric change."""
    store = get_blob_store()
    with session_scope() as session:
        deployment = deployment_service.get(session=session, deployment_id=deployment_id)
        onnx_key = deployment.onnx_key
        if deployment.status != "live" or not onnx_key:
            return "not live"
    work = Path(tempfile.mkdtemp(prefix="polytag-int8-"))
    try:
        build_int8(store, deployment_id, download(store, onnx_key, work, "model.onnx"), work)
        return "ready"
    except Exception as error:
        logger.exception("INT8 build of deployment %s failed", deployment_id)
        with session_scope() as session:
            deployment_service.record_int8(
                session=session, deployment_id=deployment_id, int8_key=None,
                report={"status": "failed", "error": str(error)[:500]},
            )  # fmt: skip
        return "failed"
    finally:
        shutil.rmtree(work, ignore_errors=True)
