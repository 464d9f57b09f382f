"""Schema of the project overview figures."""

from __future__ import annotations

from pydantic import BaseModel


class SplitStatsRead(BaseModel):
    split: str
    images: int
    labeled: int


class TagStatsRead(BaseModel):
    id: int
    name: str
    color: str
    group: str | None
    positives: int
    unreviewed: int
    by_split: dict[str, int]


class StatsRead(BaseModel):
    """Counts over the project; tag figures count labeled images only. `labels_per_image` is
    a list of `[number of tags, labeled images]`; `cooccurrence[i][j]` counts labeled images
    with both `tags[i]` and `tags[j]`."""

    images: int
    labeled: int
    unlabeled: int
    splits: list[SplitStatsRead]
    tags: list[TagStatsRead]
    labels_per_image: list[tuple[int, int]]
    cooccurrence: list[list[int]]
