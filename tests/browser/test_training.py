"""Build a workflow, start it, watch the live chart gain points, cancel another run; the demo
button on the empty projects page."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
from sqlalchemy.orm import Session

from app.deps import get_blob_store
from app.models import Project, User
from app.services import demo as demo_service
from tests.fixtures.servers import sign_in_page
from tests.fixtures.training import purge_broker

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def sign_in(page: Any, user: User) -> None:
    sign_in_page(page, user.email)


def _points(page: Any, chart: str) -> int:
    return int(page.get_attribute(f"#{chart}", "data-points") or 0)


def test_build_start_watch_and_cancel(
    page: Any, session: Session, user: User, project: Project,
    celery_worker: subprocess.Popen[bytes],
) -> None:
    purge_broker()
    demo_service.fill_demo_project(
        session=session, storage=get_blob_store(), project=project, images=16
    )
    sign_in(page, user)
    page.goto(f"/projects/{project.id}/workflows")
    # The demo comes with a quick-start workflow; build another one.
    page.locator("#workflow-list li", has_text="Digits quick start").wait_for()
    page.click("#new-workflow")
    # The quick-start workflow also shows "version 1": wait for the new entry, not the label.
    page.wait_for_function("document.querySelectorAll('#workflow-list li').length === 2")
    page.locator("#wf-version", has_text="version 1").wait_for()
    page.fill("#wf-name", "tiny digits")
    page.select_option("#arch-select", "hgnetv2_b0")
    page.fill("#input-size", "32")
    page.uncheck("[data-field='model.pretrained']")
    page.fill("[data-field='training.batch_size']", "4")
    page.select_option("[data-field='training.length_unit']", "steps")
    page.fill("[data-field='training.length']", "400")
    page.fill("[data-field='training.eval_interval']", "3")
    page.fill("[data-field='dataset.val_percent']", "25")
    page.fill("[data-field='dataset.min_positives']", "1")
    page.locator("#wf-summary", has_text="12 train / 4 validation · 400 steps").wait_for()
    assert page.locator("#tag-boxes input[type=checkbox]:checked").count() == 10

    # An impossible batch size is refused before anything is queued.
    page.fill("[data-field='training.batch_size']", "64")
    page.locator("#wf-errors", has_text="batch size 64 is larger").wait_for()
    assert page.locator("#start-run").is_disabled()
    page.fill("[data-field='training.batch_size']", "4")
    page.locator("#wf-errors li").wait_for(state="detached")

    page.click("#preview-augmentations")
    page.locator("#augmentation-preview").wait_for(state="visible")

    page.click("#start-run")
    page.wait_for_url("**/runs/*")
    first_run = page.url
    page.locator("#run-status", has_text="running").wait_for(timeout=120_000)
    page.wait_for_function(
        "document.getElementById('chart-loss').dataset.points > 0", timeout=120_000
    )
    seen = _points(page, "chart-loss")
    page.wait_for_function(
        f"document.getElementById('chart-loss').dataset.points > {seen}", timeout=120_000
    )
    page.wait_for_function(
        "document.getElementById('chart-map').dataset.points > 0", timeout=120_000
    )
    assert "step" in page.inner_text("#run-progress-text")
    page.locator("#checkpoints tr[data-kind='last']").wait_for(timeout=120_000)
    assert "training hgnetv2_b0 at 32px" in page.inner_text("#run-log")

    # A second run waits behind the first (one worker) and is cancelled from its page.
    page.goto(f"/projects/{project.id}/workflows")
    page.click("#start-run")
    page.wait_for_url("**/runs/*")
    assert page.url != first_run
    page.click("#cancel-run")
    page.locator("#run-status", has_text="cancelled").wait_for()
    assert page.locator("#cancel-run").is_hidden()

    # Cancelling the first one stops it within a step.
    page.goto(first_run)
    page.click("#cancel-run")
    page.locator("#run-status", has_text="cancelled").wait_for(timeout=60_000)
    page.goto(f"/projects/{project.id}/runs")
    assert page.locator("#runs tbody tr").count() == 2
    assert page.locator("#runs [data-cell=status]", has_text="cancelled").count() == 2


def test_demo_project_button_on_an_empty_projects_page(
    page: Any, user: User, celery_worker: subprocess.Popen[bytes], monkeypatch: Any
) -> None:
    purge_broker()
    sign_in(page, user)
    page.locator("#no-projects").wait_for()
    # A small demo keeps the test short; the page asks for the default size.
    page.route("**/api/v1/demo", lambda route: route.continue_(post_data='{"images": 12}'))
    page.click("#create-demo")
    page.locator("#demo-progress").wait_for(state="visible")
    page.wait_for_url("**/projects/*", timeout=120_000)
    assert page.locator("h1").first.inner_text() == demo_service.DEMO_NAME
