"""The project overview in Chromium: counts, bars, histogram and the co-occurrence heatmap
(counts on hover, row normalisation) for a known dataset; the tag editor is still there."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.orm import Session

from app.models import Project, Tag, User
from tests.browser.test_annotate import js_errors, sign_in
from tests.fixtures.annotating import make_asset, tag_assets

pytestmark = [pytest.mark.browser, pytest.mark.slow]
__all__ = ["js_errors"]  # the fixture, imported for use here

MakeTag = Callable[..., Tag]


def test_overview_heatmap_shows_known_counts(
    page: Any,
    session: Session,
    user: User,
    project: Project,
    make_tag: MakeTag,
    js_errors: list[str],
) -> None:
    weed, crop, soil = make_tag("weed"), make_tag("crop"), make_tag("soil")
    splits = ["train", "train", "train", "val", "val", "test"]
    labeled = [make_asset(session, project, review_state="labeled", split=s) for s in splits]
    unlabeled = make_asset(session, project)
    a, b, c, d, e, _none = labeled
    tag_assets(
        session,
        [
            (a.id, weed.id), (a.id, crop.id), (a.id, soil.id),
            (b.id, weed.id), (b.id, crop.id),
            (c.id, weed.id), (d.id, weed.id), (e.id, crop.id),
            (unlabeled.id, soil.id),
        ],
    )  # fmt: skip
    sign_in(page, user)
    page.goto(f"/projects/{project.id}")
    page.locator("#overview:not([aria-busy])").wait_for()

    assert page.inner_text("#count-images") == "7"
    assert page.inner_text("#count-labeled") == "6"
    assert page.inner_text("#count-unlabeled") == "1"
    assert page.locator("#splits tr[data-split='train'] td").all_inner_texts() == [
        "train", "3", "3",
    ]  # fmt: skip
    bars = page.locator("#tag-bars .bar-value").all_inner_texts()
    assert bars == ["4", "3", "1"]
    histogram = page.locator("#histogram .hist-value").all_inner_texts()
    assert histogram == ["1", "3", "1", "1"]  # 0, 1, 2 and 3 tags per labeled image

    def cells() -> list[list[str]]:
        rows = page.locator("#heatmap tbody tr")
        return [rows.nth(i).locator("td").all_inner_texts() for i in range(rows.count())]

    assert page.locator("#heatmap .row-head").all_inner_texts() == ["weed", "crop", "soil"]
    assert cells() == [["4", "2", "1"], ["2", "3", "1"], ["1", "1", "1"]]

    page.hover("#heatmap td[data-row='0'][data-col='1']")
    page.locator("#heatmap-tip:not([hidden])").wait_for()
    assert page.inner_text("#heatmap-tip") == "weed & crop: 2 images — P(crop | weed) = 50%"

    page.check("#normalise")
    assert cells() == [["100%", "50%", "25%"], ["67%", "100%", "33%"], ["100%", "100%", "100%"]]
    page.uncheck("#normalise")
    assert cells()[0] == ["4", "2", "1"]

    # The tag editor still lives on this page.
    assert page.locator("#tags input.tag-name").count() == 3
    assert page.locator("#new-tag").is_visible()


def test_empty_project_says_so(
    page: Any, user: User, project: Project, js_errors: list[str]
) -> None:
    sign_in(page, user)
    page.goto(f"/projects/{project.id}")
    page.locator("#no-images").wait_for()
    assert page.inner_text("#count-images") == "0"
    assert page.locator("#charts").is_hidden()
