"""Predictions with a deployment: online (the REST API) and as batch jobs over uploaded images.

A batch job stores its images under ``projects/<project>/predictions/<job>/inputs/``, runs in a
Celery task on the default queue, and writes ``results.json``; the results download as CSV, JSON
or a ZIP of the images in one folder per predicted tag.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.config import settings
from app.errors import Conflict, InvalidInput, NotFound, TooLarge
from app.inference.images import describe_bytes, open_upload
from app.models import Deployment, PredictionJob, Project, User, utcnow
from app.services import deployments as deployment_service
from app.services.jobs import enqueue
from app.storage import BlobStore

JOB_BATCH = 16
RESULT_FORMATS = ("csv", "json", "zip")
NO_TAG_FOLDER = "_no_tag"


@dataclass
class Upload:
    """One uploaded file: the client's name and its bytes."""

    name: str
    data: bytes


def parse_thresholds_field(raw: str | None) -> dict[str, Any] | float | None:
    """The ``thresholds`` form field: a JSON object {tag: value} or one number."""
    if raw is None or not raw.strip():
        return None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        raise InvalidInput(
            "thresholds must be a number between 0 and 1 or a JSON object like "
            '{"cat": 0.4, "dog": 0.7}'
        ) from None
    if isinstance(value, dict):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise InvalidInput(f"thresholds must be a number or a JSON object, got {raw[:40]!r}")


def check_top_k(top_k: int | None) -> int | None:
    """``top_k`` must be a positive number when given."""
    if top_k is not None and top_k < 1:
        raise InvalidInput(f"top_k must be at least 1, got {top_k}")
    return top_k


def check_count(count: int) -> None:
    """Refuse a call with no image or more than ``settings.predict_max_images``."""
    if count == 0:
        raise InvalidInput("send at least one image as a multipart file field named 'files'")
    limit = settings.predict_max_images
    if count > limit:
        raise TooLarge(
            f"too many images: {count} in one call, at most {limit}; split them into several "
            "calls or start a batch prediction job"
        )


def image_results(
    deployment: Deployment, scores: np.ndarray, thresholds: Sequence[float], top_k: int | None
) -> Iterator[dict[str, Any]]:
    """Per image: every tag (or the top k) by descending score, with threshold and decision."""
    limits = np.asarray(thresholds, dtype=np.float32)
    for row in np.asarray(scores, dtype=np.float32):
        order = np.argsort(-row, kind="stable")
        if top_k is not None:
            order = order[:top_k]
        tags = [
            {
                "tag_id": deployment.labels[i].get("tag_id"),
                "name": deployment.labels[i]["name"],
                "score": float(row[i]),
                "threshold": float(thresholds[i]),
                "predicted": bool(row[i] >= limits[i]),
            }
            for i in order.tolist()
        ]
        predicted = [
            deployment.labels[i]["name"] for i in np.argsort(-row, kind="stable").tolist()
            if row[i] >= limits[i]
        ]  # fmt: skip
        yield {"tags": tags, "predicted": predicted}


def predict(
    *,
    store: BlobStore,
    deployment: Deployment,
    uploads: Sequence[Upload],
    thresholds: dict[str, Any] | float | None = None,
    top_k: int | None = None,
) -> dict[str, Any]:
    """Score uploaded images with a live deployment; every bad input is a 4xx naming it."""
    check_count(len(uploads))
    check_top_k(top_k)
    limits = deployment_service.parse_thresholds(deployment, thresholds)
    model = deployment_service.load_model(store=store, deployment=deployment)
    images = [
        open_upload(
            upload.data,
            name=upload.name or f"file {number}",
            max_bytes=settings.max_upload_bytes,
            max_pixels=settings.max_image_pixels,
        )
        for number, upload in enumerate(uploads, start=1)
    ]
    scores = model.predict(images)
    results = [
        {"file": upload.name, **result}
        for upload, result in zip(
            uploads, image_results(deployment, scores, limits, top_k), strict=True
        )
    ]
    return {
        "deployment_id": deployment.id,
        "version": deployment.version,
        "deployment_name": deployment.name,
        "images": results,
    }


def _safe_name(name: str) -> str:
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("._")
    return cleaned[:120] or "image"


def _expand(uploads: Sequence[Upload]) -> list[Upload]:
    """Uploads with each zip archive replaced by the files inside it."""
    files: list[Upload] = []
    for upload in uploads:
        if not upload.data.startswith(b"PK\x03\x04"):
            files.append(upload)
            continue
        try:
            archive = zipfile.ZipFile(io.BytesIO(upload.data))
        except zipfile.BadZipFile as error:
            raise InvalidInput(f"'{upload.name}' is not a readable zip ({error})") from error
        with archive:
            members = [
                m for m in archive.infolist()
                if not m.is_dir() and not m.filename.startswith("__MACOSX/")
                and not _safe_name(m.filename).startswith(".")
            ]  # fmt: skip
            if len(members) > settings.max_zip_members:
                raise TooLarge(
                    f"'{upload.name}' holds {len(members)} files, at most "
                    f"{settings.max_zip_members}"
                )
            unpacked = sum(m.file_size for m in members)
            if unpacked > settings.max_zip_uncompressed_bytes:
                raise TooLarge(
                    f"'{upload.name}' unpacks to {describe_bytes(unpacked)}, at most "
                    f"{describe_bytes(settings.max_zip_uncompressed_bytes)}"
                )
            for member in members:
                files.append(Upload(f"{upload.name}/{member.filename}", archive.read(member)))
    return files


def create_job(
    *,
    session: Session,
    store: BlobStore,
    deployment: Deployment,
    uploads: Sequence[Upload],
    user: User | None = None,
) -> PredictionJob:
    """Check and store the images (all or nothing), then queue a batch prediction job."""
    deployment_service.load_model(store=store, deployment=deployment)  # live and loadable
    files = _expand(uploads)
    if not files:
        raise InvalidInput("send at least one image (or a zip of images) as 'files'")
    for upload in files:
        open_upload(
            upload.data,
            name=upload.name,
            max_bytes=settings.max_upload_bytes,
            max_pixels=settings.max_image_pixels,
        )
    job = PredictionJob(
        project_id=deployment.project_id,
        deployment_id=deployment.id,
        status="queued",
        total=len(files),
        created_by_id=user.id if user else None,
    )
    session.add(job)
    session.flush()
    folder = job_prefix(job)
    inputs = []
    for number, upload in enumerate(files):
        key = f"{folder}inputs/{number:06d}-{_safe_name(upload.name)}"
        store.put(key, upload.data)
        inputs.append({"name": upload.name, "key": key})
    job.inputs = inputs
    session.commit()
    enqueue("predictions.run_job", job.id)
    return job


def job_prefix(job: PredictionJob) -> str:
    """The storage folder of a job's inputs and results."""
    return f"projects/{job.project_id}/predictions/{job.id}/"


def get_job(*, session: Session, job_id: int) -> PredictionJob:
    """A prediction job, or NotFound."""
    job = session.get(PredictionJob, job_id)
    if job is None:
        raise NotFound(f"prediction job {job_id} not found")
    return job


def get_jobs(*, session: Session, project: Project, limit: int = 50) -> list[PredictionJob]:
    """The project's latest prediction jobs."""
    return list(
        session.scalars(
            select(PredictionJob)
            .where(PredictionJob.project_id == project.id)
            .order_by(PredictionJob.id.desc())
            .limit(limit)
        )
    )


def claim_job(*, session: Session, job_id: int) -> bool:
    """Move a queued job to running; False when another worker has it or it is done."""
    claimed = session.execute(
        update(PredictionJob)
        .where(PredictionJob.id == job_id, PredictionJob.status == "queued")
        .values(status="running", started_at=utcnow())
    )
    session.commit()
    return getattr(claimed, "rowcount", 0) == 1


def run_job(*, session: Session, store: BlobStore, job_id: int) -> PredictionJob:
    """Score a claimed job's images batch by batch, recording progress; write results.json."""
    job = get_job(session=session, job_id=job_id)
    deployment = session.get(Deployment, job.deployment_id) if job.deployment_id else None
    if deployment is None:
        raise NotFound("the job's deployment was deleted")
    model = deployment_service.load_model(store=store, deployment=deployment)
    thresholds = [float(t) for t in deployment.thresholds]
    results: list[dict[str, Any]] = []
    for start in range(0, len(job.inputs), JOB_BATCH):
        chunk = job.inputs[start : start + JOB_BATCH]
        images, readable = [], []
        for entry in chunk:
            try:
                images.append(
                    open_upload(
                        store.read_bytes(entry["key"]),
                        name=entry["name"],
                        max_bytes=settings.max_upload_bytes,
                        max_pixels=settings.max_image_pixels,
                    )
                )
                readable.append(entry)
            except Exception as error:  # one unreadable file must not sink the job
                results.append({"file": entry["name"], "key": entry["key"], "error": str(error)})
                job.failed += 1
        if images:
            scores = model.predict(images)
            for entry, result in zip(
                readable, image_results(deployment, scores, thresholds, None), strict=True
            ):
                results.append({"file": entry["name"], "key": entry["key"], **result})
        job.processed = min(job.total, start + len(chunk))
        session.commit()
    document = {
        "job_id": job.id,
        "deployment_id": deployment.id,
        "version": deployment.version,
        "labels": [label["name"] for label in deployment.labels],
        "images": results,
    }
    key = job_prefix(job) + "results.json"
    store.put(key, json.dumps(document).encode(), "application/json")
    job.results_key = key
    job.status = "succeeded"
    job.finished_at = utcnow()
    session.commit()
    return job


def fail_job(*, session: Session, job_id: int, error: str) -> None:
    """Mark a job failed with its error."""
    job = session.get(PredictionJob, job_id)
    if job is None:
        return
    job.status = "failed"
    job.error = error[:2000]
    job.finished_at = utcnow()
    session.commit()


def load_results(*, store: BlobStore, job: PredictionJob) -> dict[str, Any]:
    """The job's results.json, or Conflict while it has none."""
    if job.status != "succeeded" or not job.results_key:
        raise Conflict(f"prediction job {job.id} is {job.status}; results come when it succeeds")
    document: dict[str, Any] = json.loads(store.read_bytes(job.results_key))
    return document


def results_csv(document: dict[str, Any]) -> str:
    """One row per image: file, predicted tags (';'-joined), then each tag's score."""
    labels: list[str] = document["labels"]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["file", "predicted", *labels, "error"])
    for image in document["images"]:
        scores = {tag["name"]: tag["score"] for tag in image.get("tags", [])}
        writer.writerow(
            [
                image["file"],
                ";".join(image.get("predicted", [])),
                *(f"{scores[name]:.6f}" if name in scores else "" for name in labels),
                image.get("error", ""),
            ]
        )
    return buffer.getvalue()


def results_zip(*, store: BlobStore, document: dict[str, Any]) -> bytes:
    """The images in one folder per predicted tag (an image appears in each of its tags),
    images without any predicted tag in ``_no_tag/``; results.csv at the top."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("results.csv", results_csv(document))
        for number, image in enumerate(document["images"]):
            if "error" in image:
                continue
            data = store.read_bytes(image["key"])
            name = f"{number:06d}-{_safe_name(image['file'])}"
            for folder in image["predicted"] or [NO_TAG_FOLDER]:
                archive.writestr(f"{_safe_name(folder)}/{name}", data)
    return buffer.getvalue()


def delete_job(*, session: Session, store: BlobStore, job: PredictionJob) -> None:
    """Delete a job and its files."""
    folder = job_prefix(job)
    session.delete(job)
    session.commit()
    store.delete_prefix(folder)
