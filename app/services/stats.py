"""The project overview's figures, each one a GROUP BY in the database.

Tag figures count ground truth: annotations on *labeled* images (an unlabeled image has not
been looked at, so its missing tags say nothing). Archived tags are left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session, aliased

from app.models import Annotation, Asset, Project, Tag
from app.models.assets import SPLITS
from app.services import tags as tag_service


@dataclass
class SplitStats:
    """Images of one split and how many of them are labeled."""

    split: str
    images: int = 0
    labeled: int = 0


@dataclass
class TagStats:
    """A tag's positives among labeled images (in all and per split), and how many unlabeled
    images carry it already (imported or model tags nobody reviewed)."""

    id: int
    name: str
    color: str
    group: str | None
    positives: int = 0
    unreviewed: int = 0
    by_split: dict[str, int] = field(default_factory=dict)


@dataclass
class ProjectStats:
    """Everything the overview page draws."""

    images: int
    labeled: int
    unlabeled: int
    splits: list[SplitStats]
    tags: list[TagStats]
    # (number of tags, labeled images with that many), from 0 up to the largest seen.
    labels_per_image: list[tuple[int, int]]
    # cooccurrence[i][j]: labeled images with both tags[i] and tags[j]; diagonal = positives.
    cooccurrence: list[list[int]]


def _splits(session: Session, project: Project) -> list[SplitStats]:
    by_split = {split: SplitStats(split=split) for split in SPLITS}
    rows = session.execute(
        select(Asset.split, Asset.review_state, func.count())
        .where(Asset.project_id == project.id)
        .group_by(Asset.split, Asset.review_state)
    )
    for split, state, number in rows:
        entry = by_split.setdefault(split, SplitStats(split=split))
        entry.images += number
        if state == "labeled":
            entry.labeled += number
    return list(by_split.values())


def _tag_counts(session: Session, project: Project, tags: dict[int, TagStats]) -> None:
    rows = session.execute(
        select(Annotation.tag_id, Asset.split, Asset.review_state, func.count())
        .join(Asset, Asset.id == Annotation.asset_id)
        .where(Asset.project_id == project.id)
        .group_by(Annotation.tag_id, Asset.split, Asset.review_state)
    )
    for tag_id, split, state, number in rows:
        entry = tags.get(tag_id)
        if entry is None:
            continue
        if state == "labeled":
            entry.positives += number
            entry.by_split[split] = entry.by_split.get(split, 0) + number
        else:
            entry.unreviewed += number


def _labels_per_image(session: Session, project: Project, labeled: int) -> list[tuple[int, int]]:
    per_image = (
        select(Annotation.asset_id, func.count().label("labels"))
        .join(Asset, Asset.id == Annotation.asset_id)
        .join(Tag, and_(Tag.id == Annotation.tag_id, Tag.archived.is_(False)))
        .where(Asset.project_id == project.id, Asset.review_state == "labeled")
        .group_by(Annotation.asset_id)
        .subquery()
    )
    rows = session.execute(
        select(per_image.c.labels, func.count()).group_by(per_image.c.labels)
    ).all()
    histogram = {int(labels): int(images) for labels, images in rows}
    histogram[0] = labeled - sum(histogram.values())
    top = max(histogram)
    return [(labels, histogram.get(labels, 0)) for labels in range(top + 1)]


def _cooccurrence(session: Session, project: Project, tag_ids: list[int]) -> list[list[int]]:
    index = {tag_id: position for position, tag_id in enumerate(tag_ids)}
    matrix = [[0] * len(tag_ids) for _ in tag_ids]
    first, second = aliased(Annotation), aliased(Annotation)
    # Each unordered pair once (first.tag_id <= second.tag_id); the mirror is filled below.
    rows = session.execute(
        select(first.tag_id, second.tag_id, func.count())
        .join(
            second,
            and_(second.asset_id == first.asset_id, second.tag_id >= first.tag_id),
        )
        .join(Asset, Asset.id == first.asset_id)
        .where(Asset.project_id == project.id, Asset.review_state == "labeled")
        .group_by(first.tag_id, second.tag_id)
    )
    for row_tag, column_tag, number in rows:
        if row_tag in index and column_tag in index:
            i, j = index[row_tag], index[column_tag]
            matrix[i][j] = matrix[j][i] = int(number)
    return matrix


def compute(*, session: Session, project: Project) -> ProjectStats:
    """Counts, per-split and per-tag figures, labels-per-image histogram and co-occurrence."""
    active = tag_service.get_all(session=session, project=project, include_archived=False)
    tags = {
        tag.id: TagStats(id=tag.id, name=tag.name, color=tag.color, group=tag.group)
        for tag in active
    }
    splits = _splits(session, project)
    images = sum(split.images for split in splits)
    labeled = sum(split.labeled for split in splits)
    _tag_counts(session, project, tags)
    return ProjectStats(
        images=images,
        labeled=labeled,
        unlabeled=images - labeled,
        splits=splits,
        tags=list(tags.values()),
        labels_per_image=_labels_per_image(session, project, labeled),
        cooccurrence=_cooccurrence(session, project, list(tags)),
    )
