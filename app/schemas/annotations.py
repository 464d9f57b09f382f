"""Schemas of the annotator's API: the filtered asset listing and tag changes."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

ReviewState = Literal["labeled", "unlabeled"]
Pair = tuple[int, int]


class AssetFilterIn(BaseModel):
    """Which images: every condition given must hold; an empty filter matches all images."""

    review_state: ReviewState | None = None
    has: list[int] = Field(default_factory=list, description="Tag ids the image must carry")
    lacks: list[int] = Field(default_factory=list, description="Tag ids it must not carry")
    split: str | None = None
    q: str | None = Field(default=None, description="Part of the file name, any case")


class AssetItemRead(BaseModel):
    id: int
    original_filename: str
    width: int
    height: int
    split: str
    review_state: str
    tag_ids: list[int]
    thumb_url: str
    file_url: str


class FilterCountsRead(BaseModel):
    """Images each filter option matches on its own; `tags` maps tag id -> images with it."""

    images: int
    labeled: int
    unlabeled: int
    splits: dict[str, int]
    tags: dict[int, int]


class AssetPageRead(BaseModel):
    """A page in id order; page on with `after=<last id>` or back with `before=<first id>`."""

    items: list[AssetItemRead]
    total: int | None = Field(description="Matching images; null when not asked for")
    offset: int | None = Field(description="Matching images before this page, when known")
    limit: int
    has_previous: bool
    has_next: bool
    counts: FilterCountsRead | None = None


class AnnotationSet(BaseModel):
    """Put one tag on one image (`present: true`) or take it off; idempotent."""

    asset_id: int
    tag_id: int
    present: bool = True
    mark_labeled: bool = Field(
        default=True, description="Adding a tag also marks the image labeled"
    )


class AnnotationBulk(BaseModel):
    """Tag changes on explicit images (`asset_ids`) or on every image matching `filter`."""

    asset_ids: list[int] | None = None
    filter: AssetFilterIn | None = None
    add: list[int] = Field(default_factory=list, description="Tag ids to add")
    remove: list[int] = Field(default_factory=list, description="Tag ids to remove")
    review_state: ReviewState | None = None


class AssetStateRead(BaseModel):
    id: int
    review_state: str
    tag_ids: list[int]


class ChangeRevert(BaseModel):
    """A change to undo, as a change response reported it."""

    added: list[Pair] = Field(default_factory=list)
    removed: list[Pair] = Field(default_factory=list)
    labeled: list[int] = Field(default_factory=list)
    unlabeled: list[int] = Field(default_factory=list)


class ChangeRead(ChangeRevert):
    """What really changed: `[asset_id, tag_id]` pairs added and removed (including tags an
    exclusivity group pushed out), images newly labeled or unlabeled, how many images were
    targeted, and the resulting states of up to 500 of them. POST it to
    `/annotations/revert` to undo."""

    matched: int
    assets: list[AssetStateRead]
