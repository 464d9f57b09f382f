"""The sources page in Chromium: add an S3 source (moto), sync it, watch the progress to the end;
a source whose bucket does not exist shows why its sync failed. Secrets never reach the page."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.deps import get_blob_store
from app.models import Asset, Project, User
from app.services import sync as sync_service
from tests.browser.test_upload import sign_in
from tests.fixtures.cloud import S3_ACCESS_KEY_ID, S3_REGION, S3_SECRET_ACCESS_KEY, s3_client
from tests.fixtures.images import jpeg

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def worker_thread(monkeypatch: pytest.MonkeyPatch) -> list[threading.Thread]:
    """Run enqueued syncs on a thread of the test process, as a worker would."""
    threads: list[threading.Thread] = []

    def enqueue(name: str, *args: Any, **_options: Any) -> str:
        assert name == sync_service.SYNC_TASK
        thread = threading.Thread(
            target=sync_service.run_sync,
            kwargs={"job_id": args[0], "storage": get_blob_store()},
            daemon=True,
        )
        thread.start()
        threads.append(thread)
        return "thread"

    monkeypatch.setattr("app.services.jobs.enqueue", enqueue)
    return threads


def _add_source(page: Any, name: str, bucket: str, endpoint: str) -> None:
    page.fill("#source-form input[name=name]", name)
    page.fill("#source-form input[name=bucket]", bucket)
    page.fill("#source-form input[name=region]", S3_REGION)
    page.fill("#source-form input[name=endpoint_url]", endpoint)
    page.fill("#source-form input[name=access_key_id]", S3_ACCESS_KEY_ID)
    page.fill("#source-form input[name=secret_access_key]", S3_SECRET_ACCESS_KEY + "-long-secret")
    page.click("#source-form button[type=submit]")
    page.locator(".source h3", has_text=name).wait_for()


def test_add_and_sync_a_bucket(
    page: Any, session: Session, user: User, project: Project, s3_server: str, s3_bucket: str,
    worker_thread: list[threading.Thread],
) -> None:
    client = s3_client(s3_server)
    for index in range(3):
        client.put_object(Bucket=s3_bucket, Key=f"cams/{index}.jpg", Body=jpeg(index))
    sign_in(page, user)
    page.goto(f"/projects/{project.id}/sources")
    _add_source(page, "Field cams", s3_bucket, s3_server)
    card = page.locator(".source", has_text="Field cams")
    assert "never synced" in card.inner_text()
    assert "-long-secret" not in page.content()
    assert "••••cret" in card.inner_text()

    card.locator("button.sync-button").click()
    card.locator(".sync-status.succeeded").wait_for()
    assert "3/3 objects · 3 new" in card.locator(".sync-status").inner_text()
    assert card.locator(".progress").get_attribute("aria-valuenow") == "100"
    assert session.scalar(select(func.count()).select_from(Asset)) == 3

    page.reload()  # the page shows the last sync after a reload too
    assert "-long-secret" not in page.content()
    assert "3 new" in page.locator(".source .sync-status").inner_text()


def test_a_missing_bucket_is_shown_plainly(
    page: Any, user: User, project: Project, s3_server: str,
    worker_thread: list[threading.Thread],
) -> None:
    sign_in(page, user)
    page.goto(f"/projects/{project.id}/sources")
    _add_source(page, "Gone", "bucket-that-is-not-there", s3_server)
    card = page.locator(".source", has_text="Gone")
    card.locator("button.sync-button").click()
    card.locator(".sync-status.failed").wait_for()
    assert card.locator(".sync-status").inner_text() == (
        "failed: bucket 'bucket-that-is-not-there' does not exist"
    )
