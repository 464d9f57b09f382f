"""The annotator's listing: each filter, keyset paging both ways, and the counts."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy.orm import Session

from app.errors import InvalidInput
from app.models import Project, Tag
from app.services import asset_search
from app.services import projects as project_service
from app.services.asset_search import AssetFilter
from tests.fixtures.annotating import make_asset, make_assets, tag_assets

MakeTag = Callable[..., Tag]


def _ids(session: Session, project: Project, asset_filter: AssetFilter) -> list[int]:
    page = asset_search.search(
        session=session, project=project, asset_filter=asset_filter, limit=500
    )
    assert page.total == len(page.items)
    return [item.id for item in page.items]


def test_each_filter_selects_the_right_images(
    session: Session, project: Project, make_tag: MakeTag
) -> None:
    weed, crop = make_tag("weed"), make_tag("crop")
    a = make_asset(session, project, original_filename="Field_North_01.JPG", split="train",
                   review_state="labeled")  # fmt: skip
    b = make_asset(session, project, original_filename="field_south_02.jpg", split="val",
                   review_state="labeled")  # fmt: skip
    c = make_asset(session, project, original_filename="barn_100%.png", split="train")
    d = make_asset(session, project, original_filename="barn_1000.png")
    e = make_asset(session, project, original_filename="barnyard.png")
    other = project_service.create(session=session, name="Other")
    make_asset(session, other, original_filename="field_elsewhere.jpg")
    tag_assets(session, [(a.id, weed.id), (a.id, crop.id), (b.id, crop.id), (c.id, weed.id)])

    assert _ids(session, project, AssetFilter()) == [a.id, b.id, c.id, d.id, e.id]
    assert _ids(session, project, AssetFilter(review_state="labeled")) == [a.id, b.id]
    assert _ids(session, project, AssetFilter(review_state="unlabeled")) == [c.id, d.id, e.id]
    assert _ids(session, project, AssetFilter(has_tag_ids=(weed.id,))) == [a.id, c.id]
    assert _ids(session, project, AssetFilter(has_tag_ids=(weed.id, crop.id))) == [a.id]
    assert _ids(session, project, AssetFilter(lacks_tag_ids=(weed.id,))) == [b.id, d.id, e.id]
    assert _ids(session, project, AssetFilter(has_tag_ids=(crop.id,), lacks_tag_ids=(weed.id,))
                ) == [b.id]  # fmt: skip
    assert _ids(session, project, AssetFilter(split="train")) == [a.id, c.id]
    assert _ids(session, project, AssetFilter(filename="FIELD")) == [a.id, b.id]
    # LIKE wildcards in the search text are taken literally.
    assert _ids(session, project, AssetFilter(filename="100%")) == [c.id]
    assert _ids(session, project, AssetFilter(filename="barn_")) == [c.id, d.id]
    page = asset_search.search(session=session, project=project, asset_filter=AssetFilter())
    assert page.items[0].tag_ids == sorted([weed.id, crop.id])
    assert (page.items[0].has_thumb, page.items[0].original_filename) == (
        True, "Field_North_01.JPG",
    )  # fmt: skip


def test_keyset_pages_forward_and_back(session: Session, project: Project) -> None:
    ids = [asset.id for asset in make_assets(session, project, 7)]
    everything = AssetFilter()

    first = asset_search.search(session=session, project=project, asset_filter=everything, limit=3)
    assert ([i.id for i in first.items], first.offset, first.total) == (ids[:3], 0, 7)
    assert (first.has_previous, first.has_next) == (False, True)
    second = asset_search.search(
        session=session, project=project, asset_filter=everything, limit=3, after=ids[2]
    )
    assert ([i.id for i in second.items], second.offset) == (ids[3:6], 3)
    assert (second.has_previous, second.has_next) == (True, True)
    last = asset_search.search(
        session=session, project=project, asset_filter=everything, limit=3, after=ids[5]
    )
    assert ([i.id for i in last.items], last.offset, last.has_next) == ([ids[6]], 6, False)
    back = asset_search.search(
        session=session, project=project, asset_filter=everything, limit=3, before=ids[6]
    )
    assert ([i.id for i in back.items], back.offset) == (ids[3:6], 3)
    assert (back.has_previous, back.has_next) == (True, True)
    start = asset_search.search(
        session=session, project=project, asset_filter=everything, limit=3, before=ids[2]
    )
    assert ([i.id for i in start.items], start.has_previous) == (ids[:2], False)


def test_counts_per_option(session: Session, project: Project, make_tag: MakeTag) -> None:
    weed, crop = make_tag("weed"), make_tag("crop")
    a, b, c = make_assets(session, project, 3)
    make_asset(session, project, split="val", review_state="labeled")
    tag_assets(session, [(a.id, weed.id), (b.id, weed.id), (c.id, crop.id)])
    counts = asset_search.count(session=session, project=project)
    assert (counts.images, counts.labeled, counts.unlabeled) == (4, 1, 3)
    assert counts.splits == {"auto": 3, "train": 0, "val": 1, "test": 0}
    assert counts.tags == {weed.id: 2, crop.id: 1}


def test_bad_filters_are_refused(session: Session, project: Project, make_tag: MakeTag) -> None:
    weed = make_tag("weed")
    everything = AssetFilter()
    with pytest.raises(InvalidInput, match="review state 'done' must be one of"):
        asset_search.search(
            session=session, project=project, asset_filter=AssetFilter(review_state="done")
        )
    with pytest.raises(InvalidInput, match="split 'dev' must be one of"):
        asset_search.search(session=session, project=project, asset_filter=AssetFilter(split="dev"))
    with pytest.raises(InvalidInput, match="tag 424242 is not in project 'Crops'"):
        asset_search.search(
            session=session, project=project, asset_filter=AssetFilter(has_tag_ids=(424242,))
        )
    with pytest.raises(InvalidInput, match="both required and excluded"):
        asset_search.search(
            session=session, project=project,
            asset_filter=AssetFilter(has_tag_ids=(weed.id,), lacks_tag_ids=(weed.id,)),
        )  # fmt: skip
    with pytest.raises(InvalidInput, match="page size 0"):
        asset_search.search(session=session, project=project, asset_filter=everything, limit=0)


def test_pages_without_counting(session: Session, project: Project, make_tag: MakeTag) -> None:
    weed = make_tag("weed")
    ids = [asset.id for asset in make_assets(session, project, 6)]
    tag_assets(session, [(i, weed.id) for i in ids[::2]])  # ids 0, 2, 4
    with_weed = AssetFilter(has_tag_ids=(weed.id,))

    first = asset_search.search(
        session=session, project=project, asset_filter=with_weed, limit=2, with_total=False
    )
    assert ([i.id for i in first.items], first.total, first.offset) == ([ids[0], ids[2]], None, 0)
    assert (first.has_previous, first.has_next) == (False, True)
    second = asset_search.search(
        session=session, project=project, asset_filter=with_weed, limit=2, after=ids[2],
        with_total=False,
    )  # fmt: skip
    assert ([i.id for i in second.items], second.offset) == ([ids[4]], None)
    assert (second.has_previous, second.has_next) == (True, False)
    past_the_end = asset_search.search(
        session=session, project=project, asset_filter=with_weed, after=ids[5]
    )
    assert (past_the_end.items, past_the_end.total, past_the_end.offset) == ([], 3, 3)
    assert (past_the_end.has_previous, past_the_end.has_next) == (True, False)
    before_start = asset_search.search(
        session=session, project=project, asset_filter=with_weed, before=ids[0]
    )
    assert (before_start.items, before_start.has_previous, before_start.has_next) == (
        [], False, True,
    )  # fmt: skip
