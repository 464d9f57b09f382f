"""/api/v1/projects/{project_id}: the filtered assets listing, tag changes and overview stats."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query

from app.db import SessionDep
from app.deps import CurrentUser, ProjectDep
from app.models import Project
from app.schemas.annotations import (
    AnnotationBulk,
    AnnotationSet,
    AssetFilterIn,
    AssetItemRead,
    AssetPageRead,
    ChangeRead,
    ChangeRevert,
    FilterCountsRead,
    ReviewState,
)
from app.schemas.stats import StatsRead
from app.services import annotations as annotation_service
from app.services import asset_search
from app.services import stats as stats_service
from app.services.annotations import ChangeSet
from app.services.asset_search import AssetFilter, AssetItem

router = APIRouter(prefix="/projects/{project_id}", tags=["annotations"])


def _to_filter(body: AssetFilterIn) -> AssetFilter:
    return AssetFilter(
        review_state=body.review_state,
        has_tag_ids=tuple(body.has),
        lacks_tag_ids=tuple(body.lacks),
        split=body.split,
        filename=body.q,
    )


def _item(project: Project, item: AssetItem) -> AssetItemRead:
    base = f"/api/v1/projects/{project.id}/assets/{item.id}"
    fields = asdict(item)
    has_thumb = fields.pop("has_thumb")
    return AssetItemRead(
        **fields,
        file_url=f"{base}/file",
        thumb_url=f"{base}/thumb" if has_thumb else f"{base}/file",
    )


def _change(change: ChangeSet) -> ChangeRead:
    return ChangeRead.model_validate(asdict(change))


@router.get("/assets", response_model=AssetPageRead)
def list_assets(
    project: ProjectDep,
    session: SessionDep,
    review_state: ReviewState | None = None,
    has: Annotated[list[int], Query(description="Tag ids the image must carry")] = [],  # noqa: B006
    lacks: Annotated[list[int], Query(description="Tag ids it must not carry")] = [],  # noqa: B006
    split: str | None = None,
    q: Annotated[str | None, Query(description="Part of the file name")] = None,
    after: Annotated[int | None, Query(description="Page after this asset id")] = None,
    before: Annotated[int | None, Query(description="Page before this asset id")] = None,
    limit: Annotated[int, Query(ge=1, le=asset_search.MAX_PAGE_SIZE)] = 100,
    total: Annotated[
        bool, Query(description="Count the matching images (costs a scan of the project)")
    ] = True,
    counts: Annotated[bool, Query(description="Also count each filter option")] = False,
) -> AssetPageRead:
    """A page of the project's images matching the filters, in upload (id) order."""
    asset_filter = _to_filter(
        AssetFilterIn(review_state=review_state, has=has, lacks=lacks, split=split, q=q)
    )
    page = asset_search.search(
        session=session, project=project, asset_filter=asset_filter,
        after=after, before=before, limit=limit, with_total=total,
    )  # fmt: skip
    filter_counts = None
    if counts:
        filter_counts = FilterCountsRead.model_validate(
            asdict(asset_search.count(session=session, project=project))
        )
    return AssetPageRead(
        items=[_item(project, item) for item in page.items],
        total=page.total,
        offset=page.offset,
        limit=limit,
        has_previous=page.has_previous,
        has_next=page.has_next,
        counts=filter_counts,
    )


@router.post("/annotations", response_model=ChangeRead)
def set_annotation(
    project: ProjectDep, body: AnnotationSet, session: SessionDep, user: CurrentUser
) -> ChangeRead:
    """Put one tag on one image or take it off (idempotent); groups stay exclusive."""
    change = annotation_service.set_tag(
        session=session, project=project, asset_id=body.asset_id, tag_id=body.tag_id,
        present=body.present, author=user, mark_labeled=body.mark_labeled,
    )  # fmt: skip
    return _change(change)


@router.post("/annotations/bulk", response_model=ChangeRead)
def bulk_change(
    project: ProjectDep, body: AnnotationBulk, session: SessionDep, user: CurrentUser
) -> ChangeRead:
    """Add/remove tags and/or set the review state on listed images or all matching a filter."""
    change = annotation_service.change(
        session=session,
        project=project,
        author=user,
        asset_ids=body.asset_ids,
        asset_filter=_to_filter(body.filter) if body.filter is not None else None,
        add_tag_ids=body.add,
        remove_tag_ids=body.remove,
        review_state=body.review_state,
    )
    return _change(change)


@router.post("/annotations/revert", response_model=ChangeRead)
def revert_change(
    project: ProjectDep, body: ChangeRevert, session: SessionDep, user: CurrentUser
) -> ChangeRead:
    """Undo a change reported by one of the endpoints above; returns what the undo changed."""
    change = annotation_service.revert(
        session=session, project=project, author=user, added=body.added,
        removed=body.removed, labeled=body.labeled, unlabeled=body.unlabeled,
    )  # fmt: skip
    return _change(change)


@router.get("/stats", response_model=StatsRead)
def project_stats(project: ProjectDep, session: SessionDep) -> StatsRead:
    """Counts, label balance, labels-per-image histogram and ground-truth co-occurrence."""
    return StatsRead.model_validate(asdict(stats_service.compute(session=session, project=project)))
