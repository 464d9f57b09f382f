"""What a workflow's dataset block selects: labeled images, their tags, a train/val split.

The same plan is shown by the workflow builder (counts, warnings) and frozen into a run's
dataset snapshot when the run starts, so the builder's numbers are exactly what trains.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Annotation, Asset, Project, Tag
from app.schemas.workflows import DatasetBlock

# Images whose split is "test" are held out of training in the user's-own-split mode.
TRAIN_SPLITS = ("auto", "train")


@dataclass
class DatasetPlan:
    """Selected tags (display order) and images with their labels and train/val assignment."""

    tags: list[Tag]
    asset_ids: list[int] = field(default_factory=list)
    storage_keys: list[str] = field(default_factory=list)
    labels: list[list[int]] = field(default_factory=list)  # selected tag ids per image
    is_val: list[bool] = field(default_factory=list)
    labeled_images: int = 0  # labeled images in the chosen splits, before any split rule
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # Positives among the selected images of every active tag (for the builder's tick boxes).
    positives: dict[int, int] = field(default_factory=dict)

    @property
    def train_count(self) -> int:
        """Images in the train split."""
        return sum(not v for v in self.is_val)

    @property
    def val_count(self) -> int:
        """Images in the validation split."""
        return sum(self.is_val)

    def split_positives(self) -> dict[int, tuple[int, int]]:
        """Per selected tag id: (train positives, val positives)."""
        counts = {tag.id: [0, 0] for tag in self.tags}
        for labels, is_val in zip(self.labels, self.is_val, strict=True):
            for tag_id in labels:
                counts[tag_id][int(is_val)] += 1
        return {tag_id: (pair[0], pair[1]) for tag_id, pair in counts.items()}


def plan_dataset(*, session: Session, project: Project, block: DatasetBlock) -> DatasetPlan:
    """Resolve the dataset block against the project's current labels; problems are collected."""
    all_tags = {
        tag.id: tag
        for tag in session.scalars(
            select(Tag).where(Tag.project_id == project.id).order_by(Tag.position, Tag.id)
        )
    }
    chosen = list(dict.fromkeys(block.tag_ids))
    plan = DatasetPlan(tags=[])
    for tag_id in chosen:
        tag = all_tags.get(tag_id)
        if tag is None:
            plan.errors.append(f"tag {tag_id} is no longer in project '{project.name}'; untick it")
        elif tag.archived:
            plan.errors.append(f"tag '{tag.name}' is archived; untick it or restore it")
    selected = {t for t in chosen if t in all_tags and not all_tags[t].archived}
    plan.tags = [tag for tag in all_tags.values() if tag.id in selected]
    if not chosen:
        plan.errors.append("tick at least one tag to train on")
    if not block.splits:
        plan.errors.append("choose at least one split of images to use")

    rows = session.execute(
        select(Asset.id, Asset.storage_key, Asset.split)
        .where(
            Asset.project_id == project.id,
            Asset.review_state == "labeled",
            Asset.split.in_(block.splits),
        )
        .order_by(Asset.id)
    ).all()
    plan.labeled_images = len(rows)
    tags_of = _tags_of(session, project, block.splits)
    active = {tag.id for tag in all_tags.values() if not tag.archived}
    plan.positives = dict.fromkeys(active, 0)
    for asset_id, _key, _split in rows:
        for tag_id in tags_of.get(asset_id, ()):
            if tag_id in active:
                plan.positives[tag_id] += 1

    if block.validation == "split":
        rows = [row for row in rows if row[2] in (*TRAIN_SPLITS, "val")]
    for asset_id, key, split in rows:
        plan.asset_ids.append(asset_id)
        plan.storage_keys.append(key)
        plan.labels.append(sorted(t for t in tags_of.get(asset_id, ()) if t in selected))
        plan.is_val.append(split == "val")

    _check_images(plan, block)
    return plan


def _tags_of(session: Session, project: Project, splits: Sequence[str]) -> dict[int, list[int]]:
    pairs = session.execute(
        select(Annotation.asset_id, Annotation.tag_id)
        .join(Asset, Asset.id == Annotation.asset_id)
        .where(
            Asset.project_id == project.id,
            Asset.review_state == "labeled",
            Asset.split.in_(splits),
        )
    )
    tags_of: dict[int, list[int]] = defaultdict(list)
    for asset_id, tag_id in pairs:
        tags_of[asset_id].append(tag_id)
    return tags_of


def _check_images(plan: DatasetPlan, block: DatasetBlock) -> None:
    splits = ", ".join(block.splits) or "none"
    n = len(plan.asset_ids)
    if plan.labeled_images == 0:
        plan.errors.append(
            f"there are no labeled images in the chosen splits ({splits}); label some images "
            "in the annotator first"
        )
        return
    if block.validation == "auto":
        if n < 3:
            plan.errors.append(
                f"at least 3 labeled images are needed (2 to train, 1 to validate); found {n}"
            )
            return
        plan.is_val = stratified_split(plan.labels, block.val_percent / 100.0, block.seed)
    else:
        if "val" not in block.splits or plan.val_count == 0:
            plan.errors.append(
                "no labeled images are marked 'val': mark some as validation images, or choose "
                "the automatic validation split"
            )
        if plan.train_count < 2:
            plan.errors.append(
                f"{plan.train_count} labeled image(s) are marked 'train' or 'auto'; at least 2 "
                "are needed to train"
            )
        if "test" in block.splits:
            plan.warnings.append("images marked 'test' are never used for training or validation")
    for tag in plan.tags:
        positives = sum(tag.id in labels for labels in plan.labels)
        if positives == 0:
            plan.errors.append(
                f"tag '{tag.name}' has no positive labeled images; untick it or label some"
            )
        elif positives < block.min_positives:
            plan.warnings.append(
                f"tag '{tag.name}' has only {positives} positive image(s); its metrics will be "
                "unreliable"
            )
    if plan.errors:
        return
    for tag_id, (train, val) in plan.split_positives().items():
        name = next(tag.name for tag in plan.tags if tag.id == tag_id)
        if train == 0:
            plan.errors.append(f"tag '{name}' has no positive image in the training split")
        elif val == 0:
            plan.warnings.append(
                f"tag '{name}' has no positive image in the validation split; its AP cannot "
                "be measured"
            )


def stratified_split(
    label_sets: Sequence[Sequence[int]], val_fraction: float, seed: int
) -> list[bool]:
    """Assign images to validation (True) or training, keeping each label's share close to
    ``val_fraction`` (iterative stratification: rarest labels are placed first)."""
    n = len(label_sets)
    if n < 3:
        raise ValueError("stratified_split needs at least 3 images")
    n_val = min(n - 2, max(1, round(n * val_fraction)))
    rng = random.Random(seed)
    order = list(range(n))
    rng.shuffle(order)
    counts: dict[int, int] = defaultdict(int)
    for labels in label_sets:
        for label in labels:
            counts[label] += 1
    # wanted[0] is training, wanted[1] validation: images (and per-label positives) still wanted.
    wanted_total = [float(n - n_val), float(n_val)]
    wanted = [
        {label: c * (1 - val_fraction) for label, c in counts.items()},
        {label: c * val_fraction for label, c in counts.items()},
    ]
    assigned: list[bool | None] = [None] * n

    def place(index: int, side: int) -> None:
        assigned[index] = bool(side)
        wanted_total[side] -= 1
        for label in label_sets[index]:
            wanted[side][label] -= 1

    by_label: dict[int, list[int]] = defaultdict(list)
    for index in order:
        for label in label_sets[index]:
            by_label[label].append(index)
    for label in sorted(counts, key=lambda lab: (counts[lab], lab)):
        for index in by_label[label]:
            if assigned[index] is not None:
                continue
            # A full side takes no more images, so the split sizes come out exact.
            side = max(
                (0, 1), key=lambda s: (wanted_total[s] > 0, wanted[s][label], wanted_total[s])
            )
            place(index, side)
    for index in order:
        if assigned[index] is None:
            place(index, 0 if wanted_total[0] >= wanted_total[1] else 1)
    result = [bool(v) for v in assigned]
    _ensure_sizes(result, order)
    return result


def _ensure_sizes(is_val: list[bool], order: Sequence[int]) -> None:
    # Greedy placement can leave a side empty for tiny sets; the trainer needs 2 + 1 images.
    if not any(is_val):
        is_val[order[0]] = True
    while sum(not v for v in is_val) < 2:
        is_val[next(i for i in order if is_val[i])] = False


def label_hash(plan: DatasetPlan) -> str:
    """A digest of the tags, images, labels and split: equal hashes mean equal training data."""
    payload = {
        "tags": [tag.id for tag in plan.tags],
        "images": [
            [asset_id, int(is_val), labels]
            for asset_id, is_val, labels in zip(
                plan.asset_ids, plan.is_val, plan.labels, strict=True
            )
        ],
    }
    encoded = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    return hashlib.sha256(encoded).hexdigest()


def dataset_snapshot(plan: DatasetPlan, block: DatasetBlock) -> dict[str, Any]:
    """The frozen dataset of a run (columnar, so that large projects stay compact)."""
    positives = plan.split_positives()
    return {
        "tags": [{"id": tag.id, "name": tag.name, "color": tag.color} for tag in plan.tags],
        "assets": {
            "ids": plan.asset_ids,
            "keys": plan.storage_keys,
            "split": ["val" if v else "train" for v in plan.is_val],
            "labels": plan.labels,
        },
        "validation": block.validation,
        "val_percent": block.val_percent,
        "splits": list(block.splits),
        "seed": block.seed,
        "counts": {
            "train": plan.train_count,
            "val": plan.val_count,
            "positives": {str(tag_id): list(pair) for tag_id, pair in positives.items()},
        },
        "label_hash": label_hash(plan),
    }
