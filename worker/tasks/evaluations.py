"""Scoring a checkpoint on a split that has no scores yet (e.g. ``last``, to compare with best).

The images and ground truth are those of the run's stored evaluation of the same split, so both
checkpoints are measured on exactly the same images.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from app.db import session_scope
from app.deps import get_blob_store
from app.inference.preprocess import preprocess
from app.models import Checkpoint
from app.services import evaluations as evaluation_service
from app.services.score_matrices import ScoreMatrix, asset_storage_keys
from app.storage import BlobStore
from worker.celery_app import celery_app
from worker.training.checkpoint import read_checkpoint
from worker.training.export import load_scoring_model

logger = logging.getLogger(__name__)
BATCH_SIZE = 32


def download(store: BlobStore, key: str, directory: Path, name: str) -> Path:
    """Copy a stored object to a local file (torch and onnx need paths)."""
    path = directory / name
    with store.open(key) as source, path.open("wb") as target:
        shutil.copyfileobj(source, target, 1 << 20)
    return path


def column_order(label_keys: Sequence[str], tag_ids: Sequence[int]) -> list[int]:
    """Indices of the model's outputs in the order of ``tag_ids`` (label keys are tag ids)."""
    position = {str(key): index for index, key in enumerate(label_keys)}
    if all(str(tag_id) in position for tag_id in tag_ids):
        return [position[str(tag_id)] for tag_id in tag_ids]
    if len(label_keys) == len(tag_ids):
        return list(range(len(tag_ids)))
    raise ValueError(
        f"the checkpoint has {len(label_keys)} outputs but the evaluation {len(tag_ids)} tags"
    )


@torch.no_grad()
def score_images(
    model: torch.nn.Module, images: Sequence[bytes], size: int, device: torch.device
) -> np.ndarray:
    """Scores (N, labels) of encoded images through the shared preprocessing."""
    chunks = []
    for start in range(0, len(images), BATCH_SIZE):
        batch = np.stack([preprocess(data, size) for data in images[start : start + BATCH_SIZE]])
        chunks.append(model(torch.from_numpy(batch).to(device)).float().cpu().numpy())
    return np.concatenate(chunks) if chunks else np.zeros((0, 0), dtype=np.float32)


@celery_app.task(name="evaluations.score_checkpoint", acks_late=True)
def score_checkpoint(checkpoint_id: int, split: str) -> int | None:
    """Score a checkpoint on a split and store its evaluation row; no-op if one exists."""
    store = get_blob_store()
    with session_scope() as session:
        checkpoint = session.get(Checkpoint, checkpoint_id)
        if checkpoint is None:
            return None
        existing = evaluation_service.get_evaluations(session=session, checkpoint=checkpoint)
        if split in existing:
            return existing[split].id
        reference = evaluation_service.scoring_reference(
            session=session, checkpoint_id=checkpoint_id, split=split
        )
        if reference is None:
            logger.warning("checkpoint %s: no %s evaluation to score against", checkpoint_id, split)
            return None
        matrix = evaluation_service.load_scores(store=store, evaluation=reference)
        ids = [int(i) for i in matrix.asset_ids.tolist()]
        keys = asset_storage_keys(session=session, asset_ids=ids)
        checkpoint_key = checkpoint.storage_key
    # Images deleted since the run are left out of both the scores and the truth.
    present = np.array([asset_id in keys for asset_id in ids], dtype=bool)
    directory = Path(tempfile.mkdtemp(prefix="polytag-score-"))
    try:
        state = read_checkpoint(download(store, checkpoint_key, directory, "checkpoint.pt"))
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        model = load_scoring_model(state).to(device)
        order = column_order(state.label_keys, [int(t) for t in matrix.tag_ids.tolist()])
        images = [store.read_bytes(keys[asset_id]) for asset_id in ids if asset_id in keys]
        scores = score_images(model, images, state.input_size, device)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    scored = ScoreMatrix(
        asset_ids=matrix.asset_ids[present],
        tag_ids=matrix.tag_ids,
        scores=scores[:, order] if len(scores) else np.zeros((0, len(order)), np.float32),
        truth=matrix.truth[present],
    )
    with session_scope() as session:
        evaluation = evaluation_service.record_evaluation(
            session=session, store=store, checkpoint_id=checkpoint_id, split=split, matrix=scored
        )
        return evaluation.id
