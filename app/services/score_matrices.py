"""Per-image score matrices of a split: the npz format the trainer stores, and the compact
encoding the evaluation page reads straight into typed arrays."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Asset


@dataclass
class ScoreMatrix:
    """Per-image scores and ground truth of one split."""

    asset_ids: np.ndarray  # int64 (n,)
    tag_ids: np.ndarray  # int64 (k,)
    scores: np.ndarray  # float32 (n, k)
    truth: np.ndarray  # uint8 (n, k)


def read_scores(data: bytes) -> ScoreMatrix:
    """Parse a stored npz score matrix, checking its arrays fit together."""
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        matrix = ScoreMatrix(
            asset_ids=np.asarray(npz["asset_ids"], dtype=np.int64),
            tag_ids=np.asarray(npz["tag_ids"], dtype=np.int64),
            scores=np.asarray(npz["scores"], dtype=np.float32),
            truth=np.asarray(npz["truth"], dtype=np.uint8),
        )
    n, k = len(matrix.asset_ids), len(matrix.tag_ids)
    if matrix.scores.shape != (n, k) or matrix.truth.shape != (n, k):
        raise ValueError(f"score matrix shapes do not fit {n} images x {k} tags")
    return matrix


def write_scores(matrix: ScoreMatrix) -> bytes:
    """Serialise a score matrix as npz (the trainer's format)."""
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        asset_ids=matrix.asset_ids.astype(np.int64),
        tag_ids=matrix.tag_ids.astype(np.int64),
        scores=matrix.scores.astype(np.float32),
        truth=matrix.truth.astype(np.uint8),
    )
    return buffer.getvalue()


def asset_storage_keys(*, session: Session, asset_ids: list[int]) -> dict[int, str]:
    """Storage keys of the assets that still exist, by id (queried in chunks)."""
    keys: dict[int, str] = {}
    for start in range(0, len(asset_ids), 1000):
        chunk = asset_ids[start : start + 1000]
        rows = session.execute(select(Asset.id, Asset.storage_key).where(Asset.id.in_(chunk)))
        keys.update({int(row[0]): str(row[1]) for row in rows})
    return keys


def _encode(array: np.ndarray, dtype: type[np.generic]) -> str:
    # Little-endian raw bytes: the browser reads them straight into a typed array, exactly.
    raw = np.ascontiguousarray(array, dtype=np.dtype(dtype).newbyteorder("<")).tobytes()
    return base64.b64encode(raw).decode("ascii")


def encode_matrix(matrix: ScoreMatrix) -> dict[str, Any]:
    """The score matrix for the browser: ids as lists, scores/truth as base64 typed arrays."""
    return {
        "asset_ids": matrix.asset_ids.tolist(),
        "shape": [len(matrix.asset_ids), len(matrix.tag_ids)],
        "scores_f32": _encode(matrix.scores, np.float32),
        "truth_u8": _encode(matrix.truth, np.uint8),
    }
