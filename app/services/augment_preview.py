"""A preview of a workflow's augmentations on a few of the project's images, as one JPEG grid.

Each row is one image: first as the trainer sees it (decoded and resized by the shared
preprocessing), then `variants` random draws of the train-time augmentations — the very
pipeline `worker.training.data.build_augment` builds, so the preview cannot drift from training.
"""

from __future__ import annotations

import io
import random

import numpy as np
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import InvalidInput, NotFound
from app.inference.preprocess import to_uint8_chw
from app.models import Asset, Project
from app.schemas.workflows import AugmentationsBlock
from app.storage import BlobNotFound, BlobStore

GAP = 4
# Sampled from at most this many recent images, so the preview stays fast on big projects.
CANDIDATES = 500


def preview_augmentations(
    *,
    session: Session,
    storage: BlobStore,
    project: Project,
    augmentations: AugmentationsBlock,
    input_size: int,
    images: int = 4,
    variants: int = 4,
    seed: int = 0,
) -> bytes:
    """Return a JPEG grid: `images` rows of the original plus `variants` augmented versions."""
    import torch

    from worker.training.config import Augmentations
    from worker.training.data import build_augment

    candidates = list(
        session.scalars(
            select(Asset.storage_key)
            .where(Asset.project_id == project.id)
            .order_by(Asset.review_state.desc(), Asset.id.desc())
            .limit(CANDIDATES)
        )
    )
    if not candidates:
        raise NotFound(f"project '{project.name}' has no images to preview; upload some first")
    picker = random.Random(seed)
    keys = picker.sample(candidates, min(images, len(candidates)))
    try:
        config = Augmentations(**augmentations.model_dump())
        config.validate()
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    augment = build_augment(config, input_size)
    torch.manual_seed(seed)
    cell = input_size + GAP
    grid = Image.new("RGB", (cell * (variants + 1) - GAP, cell * len(keys) - GAP), "white")
    for row, key in enumerate(keys):
        try:
            original = torch.from_numpy(to_uint8_chw(storage.read_bytes(key), input_size))
        except (BlobNotFound, OSError, ValueError):
            continue  # a missing or broken file leaves its row blank rather than failing all
        tiles = [original] + [
            augment(original) if augment is not None else original for _ in range(variants)
        ]
        for column, tile in enumerate(tiles):
            array = np.ascontiguousarray(tile.numpy().transpose(1, 2, 0))
            grid.paste(Image.fromarray(array), (column * cell, row * cell))
    buffer = io.BytesIO()
    grid.save(buffer, "JPEG", quality=88)
    return buffer.getvalue()
