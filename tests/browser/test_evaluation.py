"""Evaluation page: move a threshold and watch the tables and the predictions browser change,
save it, and find it again after a reload; the page's numbers match the server's."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sqlalchemy.orm import Session

from app.deps import get_blob_store
from app.models import Project, User
from app.services import evaluations as evaluation_service
from tests.fixtures.evaluated import EvaluatedRun, create_evaluated_run
from tests.fixtures.servers import sign_in_page

pytestmark = [pytest.mark.browser, pytest.mark.slow]

VAL_TRUTH = np.array(
    [[1, 0, 1], [1, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0], [0, 1, 1], [0, 0, 0], [1, 1, 1]],
    np.uint8,
)
VAL_SCORES = np.array(
    [[0.9, 0.2, 0.7], [0.8, 0.6, 0.1], [0.3, 0.7, 0.2], [0.1, 0.3, 0.8],
     [0.4, 0.1, 0.3], [0.2, 0.9, 0.6], [0.6, 0.2, 0.1], [0.7, 0.5, 0.9]],
    np.float32,
)  # fmt: skip


@pytest.fixture
def evaluated(session: Session, project: Project, make_tag, user: User) -> EvaluatedRun:  # type: ignore[no-untyped-def]
    tags = [make_tag("apple"), make_tag("pear"), make_tag("plum")]
    return create_evaluated_run(
        session, project, tags, n_train=6, n_val=8, truth={"val": VAL_TRUTH},
        scores={"val": VAL_SCORES}, real_checkpoints=False,
    )  # fmt: skip


def _sign_in(page: Any) -> None:
    sign_in_page(page)


def _cell(page: Any, selector: str) -> str:
    return str(page.locator(selector).inner_text())


def test_moving_a_threshold_updates_tables_and_browser(
    page: Any, session: Session, evaluated: EvaluatedRun
) -> None:
    _sign_in(page)
    project, run = evaluated.project, evaluated.run
    page.goto(f"/projects/{project.id}/runs/{run.id}/evaluation")
    page.locator("#tag-table tbody tr").first.wait_for()
    apple = f"#tag-table tr[data-tag-id='{evaluated.tags[0].id}']"
    micro_f1 = "#summary-table tr[data-split='val'] td[data-metric='micro_f1']"
    page.select_option("#browser-filter", "incorrect")
    before = {
        "precision": _cell(page, f"{apple} td[data-metric='precision']"),
        "recall": _cell(page, f"{apple} td[data-metric='recall']"),
        "micro_f1": _cell(page, micro_f1),
        "incorrect": _cell(page, "#browser-count"),
        "predicted_chips": page.locator(".shot .chip.predicted").count(),
    }
    # The optimised thresholds are in force: the page agrees with the server's report.
    report = evaluation_service.report(
        session=session, store=get_blob_store(), project=project, run_id=run.id
    )
    assert before["micro_f1"] == f"{report['splits']['val']['summary']['micro_f1']:.3f}"
    assert page.locator("#mode-optimized").is_checked()

    # Drag apple's slider all the way down: every image now predicts apple.
    page.locator(f"{apple} .threshold-slider").evaluate(
        "el => { el.value = '0.05'; el.dispatchEvent(new Event('input', {bubbles: true})); }"
    )
    recall = f"{apple} td[data-metric='recall']"
    page.wait_for_function(f"() => document.querySelector(\"{recall}\").textContent === '1.000'")
    assert _cell(page, f"{apple} td[data-metric='precision']") == "0.500"  # 4 of 8 are apples
    assert _cell(page, f"{apple} td[data-metric='precision']") != before["precision"]
    assert _cell(page, micro_f1) != before["micro_f1"]
    assert _cell(page, "#browser-count") != before["incorrect"]
    assert page.locator("#mode-custom").is_checked()
    assert page.locator("#threshold-state").inner_text() == "unsaved changes"
    # Apple is now predicted on every shown image.
    shots = page.locator("#browser-grid .shot")
    for index in range(shots.count()):
        chip = shots.nth(index).locator(f".chip[data-tag-id='{evaluated.tags[0].id}']")
        assert "predicted" in (chip.get_attribute("class") or "")

    # Per-tag "above threshold" filter for apple shows every image.
    page.select_option("#browser-tag", "0")
    page.select_option("#browser-filter", "above")
    assert _cell(page, "#browser-count") == "8 of 8 images"

    # Typing works too, and saving stores what the page shows.
    pear = f"#tag-table tr[data-tag-id='{evaluated.tags[1].id}']"
    page.fill(f"{pear} .threshold-input", "0.65")
    page.locator(f"{pear} .threshold-input").press("Enter")
    page.wait_for_function(
        f"() => document.querySelector(\"{pear} td[data-metric='recall']\").textContent === '0.500'"
    )
    page.click("#save-thresholds")
    page.locator("#threshold-state", has_text="custom, saved").wait_for()
    session.expire_all()
    saved = evaluation_service.report(
        session=session, store=get_blob_store(), project=project, run_id=run.id
    )
    assert saved["thresholds"]["values"][:2] == pytest.approx([0.05, 0.65])
    assert _cell(page, micro_f1) == f"{saved['splits']['val']['summary']['micro_f1']:.3f}"
    assert _cell(page, "#summary-table tr[data-split='val'] td[data-metric='jaccard']") == (
        f"{saved['splits']['val']['summary']['jaccard']:.3f}"
    )

    page.reload()
    page.locator("#tag-table tbody tr").first.wait_for()
    assert page.locator(f"{pear} .threshold-input").input_value() == "0.65"
    assert page.locator("#mode-custom").is_checked()
    # Clicking the PR curve of a tag sets its threshold to a point of that curve.
    page.select_option("#curve-tag", "2")
    page.locator("#pr-chart svg").click(position={"x": 150, "y": 60})
    page.locator("#threshold-state", has_text="unsaved changes").wait_for()
    plum = float(page.locator(
        f"#tag-table tr[data-tag-id='{evaluated.tags[2].id}'] .threshold-input"
    ).input_value())  # fmt: skip
    assert float(plum) in {float(np.float32(v)) for v in VAL_SCORES[:, 2]} or plum in [
        round(float(v), 4) for v in VAL_SCORES[:, 2]
    ]
    # The comparison offers to score the last checkpoint.
    page.locator("#score-last").wait_for()
    assert page.locator("#cooc-truth table.heatmap").count() == 1
