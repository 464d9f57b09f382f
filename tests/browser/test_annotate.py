"""The annotator in Chromium: hotkeys, select-then-A, labeled-with-no-tag, undo, reload,
shift-selected bulk apply, exclusivity groups, and a failed save retried until it lands."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Annotation, Asset, Project, Tag, User
from tests.fixtures.annotating import make_assets
from tests.fixtures.servers import sign_in_page

pytestmark = [pytest.mark.browser, pytest.mark.slow]

MakeTag = Callable[..., Tag]


@pytest.fixture
def js_errors(page: Any) -> Iterator[list[str]]:
    """Uncaught errors of the page's scripts; a test using this fails if there were any."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield errors
    assert errors == [], f"uncaught JavaScript errors: {errors}"


def sign_in(page: Any, user: User) -> None:
    sign_in_page(page, user.email)


def open_annotator(page: Any, project: Project, tiles: int) -> None:
    page.goto(f"/projects/{project.id}/annotate")
    page.locator(".tile").nth(tiles - 1).wait_for()
    assert page.locator(".tile").count() == tiles


def wait_saved(page: Any) -> None:
    page.locator("#save-status.saved, #save-status:not([class*=' '])").wait_for()
    page.wait_for_function(
        "() => document.getElementById('save-status').textContent === 'All changes saved'"
    )


def tags_by_asset(session: Session, assets: list[Asset]) -> list[set[str]]:
    session.expire_all()
    rows = session.execute(
        select(Annotation.asset_id, Tag.name).join(Tag, Tag.id == Annotation.tag_id)
    ).all()
    return [{name for asset_id, name in rows if asset_id == asset.id} for asset in assets]


def review_states(session: Session, assets: list[Asset]) -> list[str]:
    session.expire_all()
    states = dict(session.execute(select(Asset.id, Asset.review_state)).tuples().all())
    return [states[asset.id] for asset in assets]


def test_hotkeys_select_then_a_label_undo_and_reload(
    page: Any,
    session: Session,
    user: User,
    project: Project,
    make_tag: MakeTag,
    js_errors: list[str],
) -> None:
    make_tag("weed", hotkey="w")
    make_tag("crop", hotkey="c")
    make_tag("soil")
    assets = make_assets(session, project, 6, with_bytes=True)
    sign_in(page, user)
    open_annotator(page, project, 6)

    page.keyboard.press("g")  # single-image view
    page.locator("#single:not([hidden])").wait_for()
    assert page.locator("#grid").is_hidden()
    assert page.inner_text("#single-name") == assets[0].original_filename
    page.keyboard.press("w")
    page.locator("#single-tags .tile-tag", has_text="weed").wait_for()

    page.keyboard.press("j")
    page.wait_for_function(
        f"() => document.getElementById('single-name').textContent === "
        f"'{assets[1].original_filename}'"
    )
    # Select a tag by typing in the picker, then press A to assign it.
    page.keyboard.press("/")
    page.keyboard.type("soi")
    page.keyboard.press("Enter")
    assert page.inner_text("#active-tag") == "Selected: soil (A assigns)"
    page.keyboard.press("a")
    page.locator("#single-tags .tile-tag", has_text="soil").wait_for()

    page.keyboard.press("j")
    page.keyboard.press(" ")  # labeled, no tag applies; moves on
    page.wait_for_function(
        f"() => document.getElementById('single-name').textContent === "
        f"'{assets[3].original_filename}'"
    )
    page.keyboard.press("c")
    page.locator("#single-tags .tile-tag", has_text="crop").wait_for()
    wait_saved(page)
    page.keyboard.press("z")  # undo the crop
    page.wait_for_function("() => !document.querySelector('#single-tags .tile-tag')")
    wait_saved(page)

    assert tags_by_asset(session, assets[:5]) == [{"weed"}, {"soil"}, set(), set(), set()]
    assert review_states(session, assets[:5]) == [
        "labeled", "labeled", "labeled", "unlabeled", "unlabeled",
    ]  # fmt: skip

    page.reload()
    page.locator(".tile").nth(5).wait_for()
    first = page.locator(f".tile[data-asset-id='{assets[0].id}']")
    assert first.locator(".tile-tag").all_inner_texts() == ["weed"]
    assert "labeled" in (first.get_attribute("class") or "")
    third = page.locator(f".tile[data-asset-id='{assets[2].id}']")
    assert third.locator(".tile-tag").count() == 0
    assert "labeled" in (third.get_attribute("class") or "")
    # Filters count what was saved.
    page.select_option("#filter-review", "labeled")
    page.wait_for_function("() => document.querySelectorAll('.tile').length === 3")
    assert "Labeled (3)" in page.inner_text("#filter-review")


def test_shift_selected_range_bulk_apply_and_exclusivity(
    page: Any,
    session: Session,
    user: User,
    project: Project,
    make_tag: MakeTag,
    js_errors: list[str],
) -> None:
    make_tag("healthy", hotkey="h", group="health")
    make_tag("sick", hotkey="s", group="health")
    make_tag("weed", hotkey="w")
    assets = make_assets(session, project, 8, with_bytes=True)
    sign_in(page, user)
    open_annotator(page, project, 8)
    tiles = page.locator(".tile")

    tiles.nth(1).click()
    tiles.nth(4).click(modifiers=["Shift"])
    assert page.inner_text("#selection-info") == "4 selected"
    page.keyboard.press("h")
    page.keyboard.press("w")
    wait_saved(page)
    assert tags_by_asset(session, assets) == [
        set(), *[{"healthy", "weed"}] * 4, set(), set(), set(),
    ]  # fmt: skip
    assert review_states(session, assets)[1] == "unlabeled", "bulk tagging is not a review"

    # Ctrl-click builds a selection one tile at a time; sick pushes healthy out (same group).
    tiles.nth(2).click()
    tiles.nth(3).click(modifiers=["Control"])
    tiles.nth(7).click(modifiers=["Control"])
    assert page.inner_text("#selection-info") == "2 selected"
    page.keyboard.press("s")
    wait_saved(page)
    assert tags_by_asset(session, assets) == [
        set(), {"healthy", "weed"}, {"healthy", "weed"}, {"sick", "weed"}, {"healthy", "weed"},
        set(), set(), {"sick"},
    ]  # fmt: skip
    assert tiles.nth(3).locator(".tile-tag").all_inner_texts() == ["sick", "weed"]

    # Pressing w on a selection where every image has weed takes it off them all.
    tiles.nth(1).click()
    tiles.nth(2).click(modifiers=["Shift"])
    page.keyboard.press("w")
    wait_saved(page)
    assert tags_by_asset(session, assets)[1:3] == [{"healthy"}, {"healthy"}]

    # Select all matching a filter (beyond the page) and label them in one go.
    page.click("#select-all")
    assert page.inner_text("#selection-info") == "All 8 matching images selected"
    page.click("#mark-labeled")
    wait_saved(page)
    assert review_states(session, assets) == ["labeled"] * 8


def test_failed_save_is_retried_and_survives_a_reload(
    page: Any,
    session: Session,
    user: User,
    project: Project,
    make_tag: MakeTag,
    js_errors: list[str],
) -> None:
    make_tag("weed", hotkey="w")
    assets = make_assets(session, project, 3, with_bytes=True)
    sign_in(page, user)
    open_annotator(page, project, 3)
    attempts: list[str] = []

    def flaky(route: Any) -> None:
        attempts.append(route.request.url)
        if len(attempts) <= 2:
            route.fulfill(status=503, content_type="application/json",
                          body='{"detail": "database restarting"}')  # fmt: skip
        else:
            route.continue_()

    page.route("**/api/v1/projects/*/annotations", flaky)
    page.keyboard.press("w")
    page.locator("#save-status.retrying").wait_for()
    assert "database restarting" in page.inner_text("#save-status")
    wait_saved(page)
    assert len(attempts) == 3
    assert tags_by_asset(session, assets) == [{"weed"}, set(), set()]

    # Offline: the change waits in the queue, which outlives a reload, and lands afterwards.
    page.unroute("**/api/v1/projects/*/annotations")
    page.route("**/api/v1/projects/*/annotations", lambda route: route.abort())
    page.keyboard.press("ArrowRight")
    page.keyboard.press("w")
    page.locator("#save-status.retrying").wait_for()
    page.reload()
    page.locator(".tile").nth(2).wait_for()
    page.locator("#save-status.retrying").wait_for()
    assert tags_by_asset(session, assets) == [{"weed"}, set(), set()]
    page.unroute("**/api/v1/projects/*/annotations")
    page.click("#retry-now")
    wait_saved(page)
    assert tags_by_asset(session, assets) == [{"weed"}, {"weed"}, set()]


def test_pages_of_a_larger_project_and_filters(
    page: Any,
    session: Session,
    user: User,
    project: Project,
    make_tag: MakeTag,
    js_errors: list[str],
) -> None:
    make_tag("weed", hotkey="w")
    assets = make_assets(session, project, 125)  # no bytes: broken thumbnails are fine here
    sign_in(page, user)
    page.goto(f"/projects/{project.id}/annotate")
    page.locator(".tile").nth(119).wait_for()
    assert page.locator(".tile").count() == 120
    page.wait_for_function("() => document.getElementById('page-info').textContent === "
                           "'1–120 of 125'")  # fmt: skip
    page.click("#next-page")
    page.wait_for_function("() => document.querySelectorAll('.tile').length === 5")
    assert page.inner_text("#page-info") == "121–125 of 125"
    page.click("#prev-page")
    page.wait_for_function("() => document.querySelectorAll('.tile').length === 120")

    # In the single view J walks over the page boundary.
    page.locator(".tile").nth(119).click()
    page.keyboard.press("g")
    page.keyboard.press("w")
    page.keyboard.press("j")
    page.wait_for_function(
        f"() => document.getElementById('single-name').textContent === "
        f"'{assets[120].original_filename}'"
    )
    assert page.inner_text("#page-info") == "121 of 125"
    page.keyboard.press("k")
    page.wait_for_function(
        f"() => document.getElementById('single-name').textContent === "
        f"'{assets[119].original_filename}'"
    )
    page.locator("#single-tags .tile-tag", has_text="weed").wait_for()

    # File name search and "has tag" narrow the grid; their counts are shown.
    page.keyboard.press("g")
    page.fill("#filter-q", assets[7].original_filename.removesuffix(".jpg"))
    page.wait_for_function("() => document.querySelectorAll('.tile').length === 1")
    page.fill("#filter-q", "")
    page.wait_for_function("() => document.querySelectorAll('.tile').length === 120")
    wait_saved(page)
    page.wait_for_function(
        "() => [...document.querySelectorAll('#filter-has option')]"
        ".some((o) => o.textContent === 'weed (1)')"
    )
    page.select_option("#filter-has", label="weed (1)")
    page.wait_for_function("() => document.querySelectorAll('.tile').length === 1")
    assert page.locator(".tile").get_attribute("data-asset-id") == str(assets[119].id)
