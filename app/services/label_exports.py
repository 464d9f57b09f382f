"""Export a project's labels: one-hot CSV or JSON, one record per image."""

from __future__ import annotations

from collections import defaultdict
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.imports.export import ExportRecord, write_json, write_onehot_csv
from app.models import Annotation, Asset, Project, Tag

ExportFormat = Literal["csv", "json"]


def export_labels(
    *, session: Session, project: Project, format: ExportFormat, include_unlabeled: bool = False
) -> bytes:
    """The labels of the project's labeled images (all images with `include_unlabeled`).

    CSV columns are the project's tags in display order (archived tags only when in use).
    """
    query = select(Asset.id, Asset.original_filename, Asset.split).where(
        Asset.project_id == project.id
    )
    if not include_unlabeled:
        query = query.where(Asset.review_state == "labeled")
    assets = session.execute(query.order_by(Asset.id)).all()
    tags = list(session.scalars(
        select(Tag).where(Tag.project_id == project.id).order_by(Tag.position, Tag.id)
    ))
    names = {tag.id: tag.name for tag in tags}
    labels: dict[int, list[str]] = defaultdict(list)
    used: set[int] = set()
    rows = session.execute(
        select(Annotation.asset_id, Annotation.tag_id)
        .join(Asset, Asset.id == Annotation.asset_id)
        .where(Asset.project_id == project.id)
    )
    position = {tag.id: index for index, tag in enumerate(tags)}
    for asset_id, tag_id in sorted(rows, key=lambda row: position.get(row[1], 0)):
        labels[asset_id].append(names[tag_id])
        used.add(tag_id)
    records = [
        ExportRecord(filename, labels.get(asset_id, []), None if split == "auto" else split)
        for asset_id, filename, split in assets
    ]
    if format == "json":
        return write_json(records)
    columns = [tag.name for tag in tags if not tag.archived or tag.id in used]
    return write_onehot_csv(records, columns)
