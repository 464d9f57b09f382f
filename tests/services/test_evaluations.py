"""The evaluation service: reports from stored scores, thresholds (optimised by default, custom,
'set all'), best vs last, and scoring a checkpoint that has no scores yet."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.deps import get_blob_store
from app.errors import InvalidInput, NotFound
from app.evaluation import choose_thresholds, summary_metrics
from app.inference.preprocess import preprocess
from app.models import Evaluation, Project, Tag
from app.services import evaluations as evaluation_service
from tests.fixtures.evaluated import EvaluatedRun, checkpoint_bytes, create_evaluated_run

# Tag 0: the F1-best cut is at 0.8 on validation (two positives above it, none below);
# tag 1 has no validation positives, so its threshold comes from train (0.7); tag 2 has
# positives nowhere and keeps 0.5.
VAL_TRUTH = np.array([[1, 0, 0], [1, 0, 0], [0, 0, 0], [0, 0, 0], [1, 0, 0]], np.uint8)
VAL_SCORES = np.array(
    [[0.9, 0.2, 0.1], [0.8, 0.3, 0.2], [0.75, 0.4, 0.3], [0.2, 0.1, 0.4], [0.1, 0.6, 0.9]],
    np.float32,
)
TRAIN_TRUTH = np.array([[1, 1, 0], [0, 1, 0], [0, 0, 0], [1, 0, 0]], np.uint8)
TRAIN_SCORES = np.array(
    [[0.6, 0.9, 0.1], [0.5, 0.7, 0.2], [0.4, 0.65, 0.3], [0.7, 0.1, 0.4]], np.float32
)


def _evaluated_run(
    session: Session, project: Project, make_tag: Callable[..., Tag], real_checkpoints: bool
) -> EvaluatedRun:
    tags = [make_tag("apple"), make_tag("pear"), make_tag("plum")]
    return create_evaluated_run(
        session, project, tags, n_train=4, n_val=5,
        truth={"val": VAL_TRUTH, "train": TRAIN_TRUTH},
        scores={"val": VAL_SCORES, "train": TRAIN_SCORES},
        real_checkpoints=real_checkpoints,
    )  # fmt: skip


@pytest.fixture
def evaluated(session: Session, project: Project, make_tag) -> EvaluatedRun:  # type: ignore[no-untyped-def]
    return _evaluated_run(session, project, make_tag, real_checkpoints=False)


@pytest.fixture
def evaluated_real(session: Session, project: Project, make_tag) -> EvaluatedRun:  # type: ignore[no-untyped-def]
    """With real checkpoint files, for tests that run the model."""
    return _evaluated_run(session, project, make_tag, real_checkpoints=True)


def _report(session: Session, evaluated: EvaluatedRun, **options: Any) -> dict[str, Any]:
    return evaluation_service.report(
        session=session, store=get_blob_store(), project=evaluated.project,
        run_id=evaluated.run.id, **options,
    )  # fmt: skip


def test_default_thresholds_are_the_f1_optimal_ones(
    session: Session, evaluated: EvaluatedRun
) -> None:
    report = _report(session, evaluated)
    values = report["thresholds"]["values"]
    assert report["thresholds"]["mode"] == "optimized"
    assert values == pytest.approx([0.8, 0.7, 0.5])
    expected = choose_thresholds((VAL_TRUTH, VAL_SCORES), (TRAIN_TRUTH, TRAIN_SCORES))
    assert values == pytest.approx(expected.tolist())
    # At 0.8 tag 0 finds 2 of 3 validation positives with no false positive.
    apple = report["splits"]["val"]["per_label"][0]
    assert (apple["tp"], apple["fp"], apple["fn"]) == (2, 0, 1)
    assert [t["name"] for t in report["tags"]] == ["apple", "pear", "plum"]
    assert report["splits"]["val"]["counts"]["images"] == 5


def test_saved_thresholds_change_the_report(session: Session, evaluated: EvaluatedRun) -> None:
    apple_id = evaluated.tags[0].id
    report = evaluation_service.save_thresholds(
        session=session, store=get_blob_store(), project=evaluated.project,
        run_id=evaluated.run.id, mode="custom", values={str(apple_id): 0.05, "PEAR": 0.35},
    )  # fmt: skip
    assert report["thresholds"]["mode"] == "custom"
    assert report["thresholds"]["values"] == pytest.approx([0.05, 0.35, 0.5])
    apple = report["splits"]["val"]["per_label"][0]
    assert (apple["tp"], apple["fp"]) == (3, 2)  # every image clears 0.05
    expected = summary_metrics(VAL_TRUTH, VAL_SCORES, np.array([0.05, 0.35, 0.5], np.float32))
    assert report["splits"]["val"]["summary"]["micro_f1"] == pytest.approx(expected["micro_f1"])
    # Saved on every split's row, and read back by a fresh report.
    session.expire_all()
    rows = session.scalars(select(Evaluation).where(Evaluation.run_id == evaluated.run.id)).all()
    assert all(row.thresholds["mode"] == "custom" for row in rows)
    assert _report(session, evaluated)["thresholds"]["values"] == pytest.approx([0.05, 0.35, 0.5])


def test_set_all_then_back_to_optimised(session: Session, evaluated: EvaluatedRun) -> None:
    save = evaluation_service.save_thresholds
    store = get_blob_store()
    common = {"session": session, "store": store, "project": evaluated.project,
              "run_id": evaluated.run.id}  # fmt: skip
    report = save(**common, mode="custom", all_tags=0.6, values={"plum": 0.95})  # type: ignore[arg-type]
    assert report["thresholds"]["values"] == pytest.approx([0.6, 0.6, 0.95])
    report = save(**common, mode="optimized")  # type: ignore[arg-type]
    assert report["thresholds"]["values"] == pytest.approx([0.8, 0.7, 0.5])


@pytest.mark.parametrize(
    ("values", "all_tags", "message"),
    [
        ({"apple": 1.5}, None, "threshold of tag 'apple' must be between 0 and 1, got 1.5"),
        ({"apple": -0.1}, None, "must be between 0 and 1"),
        ({"banana": 0.5}, None, "unknown tag 'banana'"),
        ({"apple": "high"}, None, "must be a number"),
        (None, 2, "'set all' threshold must be between 0 and 1"),
    ],
)
def test_bad_thresholds_are_refused(
    session: Session, evaluated: EvaluatedRun, values: object, all_tags: object, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        evaluation_service.save_thresholds(
            session=session, store=get_blob_store(), project=evaluated.project,
            run_id=evaluated.run.id, mode="custom", values=values,  # type: ignore[arg-type]
            all_tags=all_tags,  # type: ignore[arg-type]
        )  # fmt: skip


def test_thresholds_decide_in_float32(session: Session, evaluated: EvaluatedRun) -> None:
    # 0.8 typed in a browser is the double 0.8, a hair above the float32 score 0.8: rounding
    # the threshold to float32 keeps the image predicted, as the page shows it.
    report = evaluation_service.save_thresholds(
        session=session, store=get_blob_store(), project=evaluated.project,
        run_id=evaluated.run.id, mode="custom", values={"apple": 0.8},
    )  # fmt: skip
    assert report["splits"]["val"]["per_label"][0]["tp"] == 2


def test_score_matrix_and_curves_for_the_page(session: Session, evaluated: EvaluatedRun) -> None:
    report = _report(session, evaluated, include_scores=True, include_curves=True)
    val = report["splits"]["val"]
    scores = np.frombuffer(base64.b64decode(val["matrix"]["scores_f32"]), "<f4").reshape(5, 3)
    truth = np.frombuffer(base64.b64decode(val["matrix"]["truth_u8"]), np.uint8).reshape(5, 3)
    assert np.array_equal(scores, VAL_SCORES) and np.array_equal(truth, VAL_TRUTH)
    assert val["matrix"]["asset_ids"] == [a.id for a in evaluated.assets["val"]]
    assert len(val["curves"]["per_label"]) == 3
    assert val["sweep"]["thresholds"][0] == 0.0 and len(val["sweep"]["f1"]) == 101


def test_missing_evaluations_say_so(session: Session, evaluated: EvaluatedRun) -> None:
    with pytest.raises(NotFound, match=r"last checkpoint of run \d+ has no evaluation"):
        _report(session, evaluated, kind="last")
    with pytest.raises(NotFound, match="run 999 not found"):
        evaluation_service.report(
            session=session, store=get_blob_store(), project=evaluated.project, run_id=999
        )
    compared = evaluation_service.compare(
        session=session, store=get_blob_store(), project=evaluated.project,
        run_id=evaluated.run.id,
    )  # fmt: skip
    assert compared["best"]["available"] and not compared["last"]["available"]
    assert compared["last"]["has_checkpoint"] is True


def test_scoring_the_last_checkpoint_enables_the_comparison(
    session: Session, evaluated_real: EvaluatedRun
) -> None:
    evaluated = evaluated_real
    from worker.tasks.evaluations import score_checkpoint

    queued = evaluation_service.request_scoring(
        session=session, project=evaluated.project, run_id=evaluated.run.id
    )
    assert queued == ["val", "train"]
    for split in queued:
        assert score_checkpoint(evaluated.last.id, split) is not None
    assert score_checkpoint(evaluated.last.id, "val") is not None  # a second run changes nothing
    session.expire_all()
    rows = session.scalars(
        select(Evaluation).where(Evaluation.checkpoint_id == evaluated.last.id)
    ).all()
    assert sorted(row.split for row in rows) == ["train", "val"]

    # The stored scores are the last checkpoint's PyTorch scores on the same images.
    report = _report(session, evaluated, kind="last", include_scores=True)
    val = report["splits"]["val"]
    scores = np.frombuffer(base64.b64decode(val["matrix"]["scores_f32"]), "<f4").reshape(5, 3)
    from worker.training.checkpoint import Checkpoint as CheckpointFile
    from worker.training.export import load_scoring_model

    payload = torch.load(
        __import__("io").BytesIO(checkpoint_bytes(evaluated.label_keys, 1)), weights_only=True
    )
    model = load_scoring_model(CheckpointFile.from_payload(payload))
    store = get_blob_store()
    images = [store.read_bytes(asset.storage_key) for asset in evaluated.assets["val"]]
    with torch.no_grad():
        expected = model(torch.from_numpy(np.stack([preprocess(i, 64) for i in images]))).numpy()
    assert np.abs(scores - expected).max() < 1e-5
    assert val["matrix"]["truth_u8"] == base64.b64encode(VAL_TRUTH.tobytes()).decode()

    compared = evaluation_service.compare(
        session=session, store=store, project=evaluated.project, run_id=evaluated.run.id
    )
    assert compared["last"]["available"] and compared["last"]["checkpoint"]["kind"] == "last"
    assert set(compared["last"]["splits"]) == {"val", "train"}
    again = evaluation_service.request_scoring(
        session=session, project=evaluated.project, run_id=evaluated.run.id
    )
    assert again == []
