"""Overview figures on a small known dataset."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from app.models import Project, Tag
from app.services import stats as stats_service
from app.services import tags as tag_service
from tests.fixtures.annotating import make_asset, tag_assets

MakeTag = Callable[..., Tag]


def test_counts_histogram_and_cooccurrence(
    session: Session, project: Project, make_tag: MakeTag
) -> None:
    weed, crop, soil = make_tag("weed"), make_tag("crop"), make_tag("soil")
    old = make_tag("old")
    labeled = [
        make_asset(session, project, review_state="labeled", split=split)
        for split in ("train", "train", "train", "val", "val")
    ]
    unlabeled = make_asset(session, project)
    make_asset(session, project, split="test")
    a, b, c, d, _none = labeled
    tag_assets(
        session,
        [
            (a.id, weed.id), (a.id, crop.id), (a.id, soil.id),
            (b.id, weed.id), (b.id, crop.id),
            (c.id, weed.id),
            (d.id, crop.id), (d.id, old.id),
            (unlabeled.id, weed.id),  # not reviewed: not ground truth
        ],
    )  # fmt: skip
    tag_service.update(session=session, project=project, tag=old, archived=True)

    stats = stats_service.compute(session=session, project=project)
    assert (stats.images, stats.labeled, stats.unlabeled) == (7, 5, 2)
    assert [(s.split, s.images, s.labeled) for s in stats.splits] == [
        ("auto", 1, 0), ("train", 3, 3), ("val", 2, 2), ("test", 1, 0),
    ]  # fmt: skip
    assert [(t.name, t.positives, t.unreviewed) for t in stats.tags] == [
        ("weed", 3, 1), ("crop", 3, 0), ("soil", 1, 0),
    ], "archived tags are left out"  # fmt: skip
    assert stats.tags[1].by_split == {"train": 2, "val": 1}
    # a: 3 tags, b: 2, c: 1, d: 1 (the archived one does not count), _none: 0.
    assert stats.labels_per_image == [(0, 1), (1, 2), (2, 1), (3, 1)]
    assert stats.cooccurrence == [
        [3, 2, 1],
        [2, 3, 1],
        [1, 1, 1],
    ]


def test_empty_project(session: Session, project: Project) -> None:
    stats = stats_service.compute(session=session, project=project)
    assert (stats.images, stats.labeled, stats.tags, stats.cooccurrence) == (0, 0, [], [])
    assert stats.labels_per_image == [(0, 0)]
