"""Deployments page and "Try it": a live deployment is listed and scores a chosen image."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from app.inference.sessions import models
from app.models import Project, Tag, User
from tests.browser.test_evaluation import _sign_in
from tests.fixtures.evaluated import create_evaluated_run, image_bytes, make_live_deployment

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(autouse=True)
def _fresh_models() -> Iterator[None]:
    yield
    models.clear()


def test_try_it_shows_scores_and_thresholds(
    page: Any,
    session: Session,
    project: Project,
    make_tag: Callable[..., Tag],
    user: User,
    tmp_path: Path,
) -> None:
    tags = [make_tag("apple"), make_tag("pear")]
    evaluated = create_evaluated_run(session, project, tags, real_checkpoints=False)
    deployment = make_live_deployment(session, evaluated, thresholds=[0.0, 1.0])
    _sign_in(page)
    page.goto(f"/projects/{project.id}/deployments")
    row = page.locator(f"#deployments tr[data-deployment-id='{deployment.id}']")
    row.wait_for()
    assert "live" in row.inner_text() and "default" in row.inner_text()
    row.locator("text=Try it").click()
    page.wait_for_url(f"**/deployments/{deployment.id}/try")
    picture = tmp_path / "photo.png"
    picture.write_bytes(image_bytes(3))
    page.set_input_files("#try-file", str(picture))
    page.locator("#try-tags tbody tr").first.wait_for()
    assert page.locator("#try-tags tbody tr").count() == 2
    apple = page.locator("#try-tags tr[data-tag='apple']")
    pear = page.locator("#try-tags tr[data-tag='pear']")
    assert "predicted" in (apple.get_attribute("class") or "")  # threshold 0: always
    assert "predicted" not in (pear.get_attribute("class") or "")  # threshold 1: never here
    assert apple.locator("td").nth(2).inner_text() == "0.000"
    # Not an image: the page shows the API's message naming the file.
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    page.set_input_files("#try-file", str(bad))
    page.locator("#try-error").wait_for(state="visible")
    assert "'notes.txt' is not an image" in page.locator("#try-error").inner_text()
