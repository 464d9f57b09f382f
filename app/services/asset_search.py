"""The annotator's listing of a project's images: filters, counts and keyset pages.

Pages are keyed on the asset id (`after` / `before`) rather than an offset, so page 500 of a
100,000-image project costs what page 1 does: every query is an index range scan with a LIMIT.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, Select, exists, func, select
from sqlalchemy.orm import Session

from app.errors import InvalidInput
from app.models import Annotation, Asset, Project, Tag
from app.models.assets import REVIEW_STATES, SPLITS

MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 100


@dataclass(frozen=True)
class AssetFilter:
    """Which images to show; an empty filter matches every image of the project."""

    review_state: str | None = None
    has_tag_ids: tuple[int, ...] = ()
    lacks_tag_ids: tuple[int, ...] = ()
    split: str | None = None
    filename: str | None = None


@dataclass
class AssetItem:
    """One image of a page with what the annotator shows about it."""

    id: int
    original_filename: str
    width: int
    height: int
    split: str
    review_state: str
    has_thumb: bool
    tag_ids: list[int] = field(default_factory=list)


@dataclass
class AssetPage:
    """A page of matching images in id order; the filter's total and the number of matching
    images before the page when they were counted."""

    items: list[AssetItem]
    total: int | None
    offset: int | None
    has_previous: bool
    has_next: bool


@dataclass
class FilterCounts:
    """How many images each filter option matches on its own."""

    images: int
    labeled: int
    unlabeled: int
    splits: dict[str, int]
    tags: dict[int, int]


def check_filter(*, session: Session, project: Project, asset_filter: AssetFilter) -> AssetFilter:
    """Refuse a filter naming an unknown review state, split or a tag of another project."""
    if asset_filter.review_state is not None and asset_filter.review_state not in REVIEW_STATES:
        raise InvalidInput(
            f"review state '{asset_filter.review_state}' must be one of: "
            + ", ".join(REVIEW_STATES)
        )
    if asset_filter.split is not None and asset_filter.split not in SPLITS:
        raise InvalidInput(f"split '{asset_filter.split}' must be one of: " + ", ".join(SPLITS))
    named = set(asset_filter.has_tag_ids) | set(asset_filter.lacks_tag_ids)
    if named:
        known = set(
            session.scalars(select(Tag.id).where(Tag.project_id == project.id, Tag.id.in_(named)))
        )
        unknown = sorted(named - known)
        if unknown:
            raise InvalidInput(f"tag {unknown[0]} is not in project '{project.name}'")
    both = set(asset_filter.has_tag_ids) & set(asset_filter.lacks_tag_ids)
    if both:
        raise InvalidInput(f"tag {min(both)} cannot be both required and excluded")
    return asset_filter


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def filter_conditions(*, project_id: int, asset_filter: AssetFilter) -> list[ColumnElement[bool]]:
    """The WHERE conditions on `asset` that a filter stands for."""
    conditions: list[ColumnElement[bool]] = [Asset.project_id == project_id]
    if asset_filter.review_state is not None:
        conditions.append(Asset.review_state == asset_filter.review_state)
    if asset_filter.split is not None:
        conditions.append(Asset.split == asset_filter.split)
    # Correlated EXISTS probes the (asset_id, tag_id) unique index once per candidate row, which
    # suits a LIMITed id-ordered scan better than materialising every asset of a common tag.
    for tag_id in asset_filter.has_tag_ids:
        conditions.append(
            exists().where(Annotation.asset_id == Asset.id, Annotation.tag_id == tag_id)
        )
    for tag_id in asset_filter.lacks_tag_ids:
        conditions.append(
            ~exists().where(Annotation.asset_id == Asset.id, Annotation.tag_id == tag_id)
        )
    needle = (asset_filter.filename or "").strip().lower()
    if needle:
        conditions.append(
            func.lower(Asset.original_filename).like(f"%{_escape_like(needle)}%", escape="\\")
        )
    return conditions


def matching_ids(*, project: Project, asset_filter: AssetFilter) -> Select[int]:
    """A SELECT of the ids of every image that matches the filter, in id order."""
    conditions = filter_conditions(project_id=project.id, asset_filter=asset_filter)
    return select(Asset.id).where(*conditions).order_by(Asset.id)


def tag_ids_of(*, session: Session, asset_ids: Sequence[int]) -> dict[int, list[int]]:
    """The tag ids on each of the given images (one query)."""
    by_asset: dict[int, list[int]] = defaultdict(list)
    if not asset_ids:
        return by_asset
    rows = session.execute(
        select(Annotation.asset_id, Annotation.tag_id)
        .where(Annotation.asset_id.in_(list(asset_ids)))
        .order_by(Annotation.asset_id, Annotation.tag_id)
    )
    for asset_id, tag_id in rows:
        by_asset[asset_id].append(tag_id)
    return by_asset


def _any(session: Session, conditions: Sequence[ColumnElement[bool]]) -> bool:
    return session.scalar(select(Asset.id).where(*conditions).limit(1)) is not None


def _count(session: Session, conditions: Sequence[ColumnElement[bool]]) -> int:
    return int(session.scalar(select(func.count()).select_from(Asset).where(*conditions)) or 0)


def search(
    *,
    session: Session,
    project: Project,
    asset_filter: AssetFilter,
    after: int | None = None,
    before: int | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
    with_total: bool = True,
) -> AssetPage:
    """One page of matching images: the first, the one after id `after`, or the one before
    id `before`. Without `with_total`, the page costs the same at any project size (index
    seeks bounded by the page), and `total` and `offset` (unless 0) are None."""
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidInput(f"page size {limit} must be between 1 and {MAX_PAGE_SIZE}")
    if after is not None and before is not None:
        raise InvalidInput("give either 'after' or 'before', not both")
    check_filter(session=session, project=project, asset_filter=asset_filter)
    conditions = filter_conditions(project_id=project.id, asset_filter=asset_filter)
    columns = (
        Asset.id, Asset.original_filename, Asset.width, Asset.height, Asset.split,
        Asset.review_state, Asset.thumb_key,
    )  # fmt: skip
    query = select(*columns).where(*conditions)
    if before is not None:
        rows = list(
            session.execute(
                query.where(Asset.id < before).order_by(Asset.id.desc()).limit(limit + 1)
            )
        )
        more_before = len(rows) > limit
        rows = rows[:limit][::-1]
    else:
        if after is not None:
            query = query.where(Asset.id > after)
        rows = list(session.execute(query.order_by(Asset.id).limit(limit + 1)))
        more_after = len(rows) > limit
        rows = rows[:limit]
    # The ids bounding the page (an empty page sits just after `after` or before `before`).
    low = rows[0].id if rows else (after + 1 if after is not None else before)
    high = rows[-1].id if rows else (before - 1 if before is not None else after)
    if before is not None:
        has_previous = more_before
        has_next = high is not None and _any(session, [*conditions, Asset.id > high])
    else:
        has_previous = low is not None and _any(session, [*conditions, Asset.id < low])
        has_next = more_after
    total = offset = None
    if with_total:
        # Counting is the one part of a page whose cost grows with the project.
        total = _count(session, conditions)
        offset = _count(session, [*conditions, Asset.id < low]) if has_previous else 0
    elif not has_previous:
        offset = 0
    tags = tag_ids_of(session=session, asset_ids=[row.id for row in rows])
    items = [
        AssetItem(
            id=row.id,
            original_filename=row.original_filename,
            width=row.width,
            height=row.height,
            split=row.split,
            review_state=row.review_state,
            has_thumb=row.thumb_key is not None,
            tag_ids=tags.get(row.id, []),
        )
        for row in rows
    ]
    return AssetPage(
        items=items, total=total, offset=offset, has_previous=has_previous, has_next=has_next
    )


def count(*, session: Session, project: Project) -> FilterCounts:
    """Images per review state, per split and per tag (two GROUP BY queries)."""
    by_state: dict[str, int] = defaultdict(int)
    splits: dict[str, int] = dict.fromkeys(SPLITS, 0)
    rows = session.execute(
        select(Asset.review_state, Asset.split, func.count())
        .where(Asset.project_id == project.id)
        .group_by(Asset.review_state, Asset.split)
    )
    for state, split, number in rows:
        by_state[state] += number
        splits[split] = splits.get(split, 0) + number
    # IN (the project's tags) lets the planner range-scan the tag_id index tag by tag.
    project_tags = select(Tag.id).where(Tag.project_id == project.id).scalar_subquery()
    tag_rows = session.execute(
        select(Annotation.tag_id, func.count())
        .where(Annotation.tag_id.in_(project_tags))
        .group_by(Annotation.tag_id)
    )
    tags = {tag_id: number for tag_id, number in tag_rows}
    return FilterCounts(
        images=sum(by_state.values()),
        labeled=by_state["labeled"],
        unlabeled=by_state["unlabeled"],
        splits=splits,
        tags=tags,
    )
