"""The upload page in Chromium: a folder through the directory picker with a tag applied,
thumbnails of what went in, the duplicate and rejection report; then a label import."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Annotation, Asset, Project, Tag, User
from tests.fixtures.images import corrupt_jpeg, image_bytes, jpeg
from tests.fixtures.servers import sign_in_page

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def sign_in(page: Any, user: User) -> None:
    sign_in_page(page, user.email)


def test_upload_a_folder_with_a_tag(
    page: Any, session: Session, user: User, project: Project, make_tag: Callable[..., Tag],
    tmp_path: Path,
) -> None:
    weed = make_tag("weed")
    folder = tmp_path / "field"
    (folder / "row2").mkdir(parents=True)
    (folder / "a.jpg").write_bytes(jpeg(1))
    (folder / "b.png").write_bytes(image_bytes((0, 90, 0), (120, 80), "PNG"))
    (folder / "row2" / "c.jpg").write_bytes(jpeg(3))
    (folder / "row2" / "a-again.jpg").write_bytes(jpeg(1))
    (folder / "broken.jpg").write_bytes(corrupt_jpeg())

    sign_in(page, user)
    page.goto(f"/projects/{project.id}/upload")
    page.locator("#batch-tag-list label", has_text="weed").locator("input").check()
    page.set_input_files("#folder-input", str(folder))
    page.locator(".batch.done").wait_for()

    assert page.locator("#totals").inner_text() == "3 added · 1 duplicates · 1 rejected"
    rows = page.locator("#results tbody tr").evaluate_all(
        "rows => rows.map(r => [...r.cells].map(c => c.textContent))"
    )
    by_name = {name: (status, details) for name, status, details in rows}
    assert set(by_name) == {"field/a.jpg", "field/b.png", "field/row2/c.jpg",
                            "field/row2/a-again.jpg", "field/broken.jpg"}
    first = session.scalar(select(Asset.id).where(Asset.original_filename == "field/a.jpg"))
    assert by_name["field/row2/a-again.jpg"] == (
        "duplicate", f"already in the project as image {first}")
    assert by_name["field/broken.jpg"][0] == "rejected"
    assert by_name["field/broken.jpg"][1].startswith("corrupt image")

    # Thumbnails of every image that is in the project, served through the authenticated API.
    thumbs = page.locator("#thumbs img")
    assert thumbs.count() == 4
    page.wait_for_function(
        "() => [...document.querySelectorAll('#thumbs img')]"
        ".every(img => img.complete && img.naturalWidth > 0)"
    )

    page.check("#only-problems")
    assert page.locator("#results tbody tr:not([hidden])").count() == 2

    session.expire_all()
    tagged = set(session.scalars(
        select(Asset.original_filename).join(Annotation, Annotation.asset_id == Asset.id)
        .where(Annotation.tag_id == weed.id)
    ))
    assert tagged == {"field/a.jpg", "field/b.png", "field/row2/c.jpg"}


def test_import_labels_with_a_preview(
    page: Any, session: Session, user: User, project: Project, tmp_path: Path
) -> None:
    sign_in(page, user)
    page.goto(f"/projects/{project.id}/upload")
    page.set_input_files("#file-input", [
        {"name": "a.jpg", "mimeType": "image/jpeg", "buffer": jpeg(1)},
        {"name": "b.jpg", "mimeType": "image/jpeg", "buffer": jpeg(2)},
    ])
    page.locator(".batch.done").wait_for()
    labels = tmp_path / "labels.csv"
    labels.write_text("a.jpg,cat\nb.jpg,cat,dog\nmissing.jpg,dog\n")
    page.select_option("#import-format", "csv")
    page.set_input_files("#import-file", str(labels))
    page.click("#import-preview-button")
    page.locator("#import-preview").wait_for()
    summary = page.locator("#import-summary").inner_text()
    assert "2 images matched" in summary and "1 file names not found" in summary
    assert page.locator("#import-unmatched li").all_inner_texts() == ["missing.jpg"]
    assert page.locator("#import-new-tags .chip").all_inner_texts() == ["cat", "dog"]
    assert page.locator("#import-rows tbody tr").count() == 2
    session.expire_all()
    assert session.scalar(select(Tag.id)) is None, "the preview writes nothing"

    page.click("#import-confirm")
    page.locator("#import-result").wait_for()
    assert "2 images labeled, 3 tags set, 2 new tags" in page.locator("#import-result").inner_text()
    session.expire_all()
    assert set(session.scalars(select(Annotation.source))) == {"import"}
