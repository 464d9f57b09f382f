"""The training loop end to end on a toy problem, on the CPU."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from app.evaluation import cooccurrence
from worker.training import checkpoint as checkpoint_module
from worker.training import loop as loop_module
from worker.training.checkpoint import Checkpoint, LocalCheckpointStore, read_checkpoint
from worker.training.config import TrainConfig
from worker.training.data import TrainData, decode_images
from worker.training.export import load_scoring_model
from worker.training.loop import train
from worker.training.runtime import Runtime
from worker.training.scoring import predict_logits
from worker.training.sink import MemorySink

ConfigFactory = Callable[..., TrainConfig]


@pytest.mark.slow
def test_a_real_backbone_learns_the_toy_problem(
    toy_data: TrainData, image_factory: Callable[..., Any], tmp_path: Path
) -> None:
    data = TrainData(toy_data.label_keys, image_factory(96, seed=2), image_factory(32, seed=3))
    config = TrainConfig(
        arch="resnet18", input_size=32, pretrained=False, batch_size=16, max_steps=40,
        eval_interval=10, log_interval=5, lr=1e-3, num_workers=0, device="cpu",
    )  # fmt: skip
    sink = MemorySink()

    result = train(config, data, sink, LocalCheckpointStore(tmp_path))

    losses = [value for _, value in sink.series("train", "loss")]
    maps = [value for _, value in sink.series("val", "map")]
    assert result.status == "succeeded" and result.step == 40
    assert np.mean(losses[-2:]) < 0.75 * np.mean(losses[:2])
    assert max(maps) > 0.75  # chance is the label frequency, about 0.5
    assert result.evaluations["val"].metrics["map"] == pytest.approx(max(maps), abs=1e-6)


def test_a_run_reports_metrics_checkpoints_and_final_scores(finished_run: Any) -> None:
    sink, result, data = finished_run.sink, finished_run.result, finished_run.data

    assert (result.status, result.stop_reason, result.step) == ("succeeded", "completed", 4)
    assert [step for step, _ in sink.series("train", "loss")] == [1, 2, 3, 4]
    val_steps = sorted({step for step, split, _ in sink.metrics if split == "val"})
    assert val_steps == [2, 4]
    _, _, values = next(m for m in sink.metrics if m[1] == "val")
    for name in ("loss", "map", "micro_f1", "macro_precision", "ap/red", "f1/white"):
        assert name in values
    assert all(np.isfinite(v) for v in values.values())
    assert {c.kind for c in sink.checkpoints} >= {"last"} and sink.heartbeats
    val = result.evaluations["val"]
    assert val.scores.dtype == np.float32 and val.scores.shape == (16, 4)
    assert result.evaluations["train"].scores.shape == (32, 4)
    assert val.scores.min() >= 0.0 and val.scores.max() <= 1.0
    np.testing.assert_array_equal(val.cooccurrence_true, cooccurrence(data.val.labels))
    predicted = (val.scores >= 0.5).astype(int)
    np.testing.assert_array_equal(val.cooccurrence_pred, predicted.T @ predicted)
    assert len(val.per_label) == 4


def test_final_scores_come_from_the_best_checkpoint(finished_run: Any) -> None:
    best = read_checkpoint(finished_run.directory / "best.pt")
    cpu = Runtime(torch.device("cpu"), None, False, None)
    val_images = decode_images(finished_run.data.val, best.input_size)

    model = load_scoring_model(best).model
    scores = torch.sigmoid(predict_logits(model, val_images, cpu, batch_size=8)).numpy()

    assert finished_run.result.best.step == best.step
    np.testing.assert_allclose(finished_run.result.evaluations["val"].scores, scores, atol=1e-5)


def test_checkpoints_are_complete_and_match_their_records(finished_run: Any) -> None:
    directory: Path = finished_run.directory
    last = read_checkpoint(directory / "last.pt")
    record = finished_run.result.last

    assert sorted(p.name for p in directory.iterdir()) == ["best.pt", "last.pt"]  # no temp files
    assert (last.kind, last.step, last.arch, last.input_size) == ("last", 4, "hgnetv2_b0", 32)
    assert last.label_keys == ["red", "green", "blue", "white"] == last.label_names
    assert TrainConfig.from_dict(last.config) == finished_run.config
    assert last.optimizer_state["state"] and last.schedule_state and "map" in last.metrics
    assert last.monitor == "map" and last.monitor_value == last.metrics["map"]
    assert last.preprocess["mean"] == [0.485, 0.456, 0.406]
    assert record.sha256 == hashlib.sha256((directory / "last.pt").read_bytes()).hexdigest()
    assert record.size_bytes == (directory / "last.pt").stat().st_size


def test_a_failed_write_leaves_the_previous_checkpoint_intact(
    finished_run: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalCheckpointStore(tmp_path)
    checkpoint = read_checkpoint(finished_run.directory / "last.pt")
    store.save(checkpoint)
    before = (tmp_path / "last.pt").read_bytes()

    def crash_mid_write(payload: object, stream: Any) -> None:
        stream.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint_module.torch, "save", crash_mid_write)
    with pytest.raises(OSError, match="disk full"):
        store.save(Checkpoint(**{**checkpoint.to_payload(), "step": 99}))

    assert (tmp_path / "last.pt").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


class CancelAfter(MemorySink):
    """A sink whose run asks to be cancelled once ``step`` has been logged."""

    def __init__(self, step: int) -> None:
        super().__init__()
        self.cancel_at = step
        self.cancelled = False

    def log_metrics(self, step: int, split: Any, values: Any) -> None:
        super().log_metrics(step, split, values)
        self.cancelled = self.cancelled or step >= self.cancel_at

    def should_cancel(self) -> bool:
        return self.cancelled


def test_cancel_stops_before_the_next_step(
    toy_data: TrainData, config_factory: ConfigFactory, tmp_path: Path
) -> None:
    sink = CancelAfter(step=3)

    result = train(
        config_factory(max_steps=50), toy_data, sink, LocalCheckpointStore(tmp_path),
        should_cancel=sink.should_cancel,
    )  # fmt: skip

    assert (result.status, result.stop_reason, result.step) == ("cancelled", "cancelled", 3)
    assert max(step for step, _, _ in sink.metrics) == 3
    assert result.evaluations == {}
    assert result.last is not None and result.last.step == 2
    assert sink.messages[-1] == "stopped at step 3"


def test_a_small_set_logs_its_decoding_once(
    image_factory: Callable[..., Any], config_factory: ConfigFactory, tmp_path: Path
) -> None:
    data = TrainData(["a", "b", "c", "d"], image_factory(12), image_factory(5, seed=1))
    sink = MemorySink()

    train(config_factory(max_steps=1, eval_interval=1), data, sink, LocalCheckpointStore(tmp_path))

    decoded = [m for m in sink.messages if m.startswith("decoded")]
    assert decoded == ["decoded 12/12 train images", "decoded 5/5 val images"]


def test_cancel_while_decoding_trains_nothing(
    toy_data: TrainData, config_factory: ConfigFactory, tmp_path: Path
) -> None:
    sink = MemorySink()

    result = train(config_factory(), toy_data, sink, LocalCheckpointStore(tmp_path), lambda: True)

    assert (result.status, result.step) == ("cancelled", 0)
    assert sink.metrics == [] and sink.checkpoints == [] and list(tmp_path.iterdir()) == []


def test_resume_continues_the_step_count_and_optimizer_state(
    toy_data: TrainData, config_factory: ConfigFactory, tmp_path: Path
) -> None:
    config = config_factory(max_steps=6)
    store = LocalCheckpointStore(tmp_path)
    first = CancelAfter(step=3)
    train(config, toy_data, first, store, should_cancel=first.should_cancel)
    last = store.load("last")
    assert last is not None and last.step == 2

    sink = MemorySink()
    result = train(config, toy_data, sink, store, resume=last)

    assert (result.status, result.step) == ("succeeded", 6)
    assert [step for step, _ in sink.series("train", "loss")] == [3, 4, 5, 6]
    assert [step for step, _ in sink.series("val", "map")] == [4, 6]
    assert "resumed from the last checkpoint at step 2" in sink.messages
    final = read_checkpoint(tmp_path / "last.pt")
    adam_steps = {float(s["step"]) for s in final.optimizer_state["state"].values()}
    assert adam_steps == {6.0}  # 2 steps before the resume + 4 after: the state carried over
    assert final.train_seconds > last.train_seconds


def test_resume_refuses_a_checkpoint_of_other_labels(
    finished_run: Any, config_factory: ConfigFactory, tmp_path: Path
) -> None:
    last = read_checkpoint(finished_run.directory / "last.pt")
    data = finished_run.data
    relabelled = TrainData(["a", "b", "c", "d"], data.train, data.val)

    with pytest.raises(ValueError, match="does not match this run"):
        train(config_factory(), relabelled, MemorySink(), LocalCheckpointStore(tmp_path),
              resume=last)  # fmt: skip


def test_pretrained_without_weights_says_so_and_trains(
    toy_data: TrainData, config_factory: ConfigFactory, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-torch"))
    sink = MemorySink()

    result = train(config_factory(pretrained=True, max_steps=2), toy_data, sink,
                   LocalCheckpointStore(tmp_path / "run"))  # fmt: skip

    assert "no pretrained weights found for hgnetv2_b0: training from scratch" in sink.messages
    assert result.status == "succeeded" and result.step == 2


def test_early_stopping_after_patience_evaluations_without_improvement(
    toy_data: TrainData, config_factory: ConfigFactory, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setattr(loop_module, "validation_metrics", lambda *a: {"loss": 1.0, "map": 0.5})
    config = config_factory(max_steps=20, eval_interval=1, early_stopping_patience=2)

    result = train(config, toy_data, MemorySink(), LocalCheckpointStore(tmp_path))

    assert (result.stop_reason, result.step) == ("early_stopping", 3)
    assert result.best is not None and result.best.step == 1


def test_a_time_budget_ends_the_run(
    toy_data: TrainData, config_factory: ConfigFactory, tmp_path: Path
) -> None:
    config = config_factory(max_steps=None, time_budget_minutes=1e-4, eval_interval=0)
    sink = MemorySink()

    result = train(config, toy_data, sink, LocalCheckpointStore(tmp_path))

    assert (result.status, result.stop_reason, result.step) == ("succeeded", "time_budget", 1)
    assert [step for step, _ in sink.series("val", "map")] == [1]


def test_resume_keeps_the_earlier_best_when_later_evaluations_are_worse(
    toy_data: TrainData, config_factory: ConfigFactory, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    maps = iter([0.9, 0.5, 0.4])  # evaluations at steps 2, 4, 6
    monkeypatch.setattr(
        loop_module, "validation_metrics", lambda *a: {"loss": 1.0, "map": next(maps)}
    )
    config = config_factory(max_steps=6)
    store = LocalCheckpointStore(tmp_path)
    first = CancelAfter(step=3)
    train(config, toy_data, first, store, should_cancel=first.should_cancel)

    sink = MemorySink()
    result = train(config, toy_data, sink, store, resume=store.load("last"))

    assert [c.kind for c in sink.checkpoints] == ["last", "last"]
    best = store.load("best")
    assert best is not None and (best.step, best.monitor_value) == (2, 0.9)
    assert result.best is None and result.last is not None and result.last.step == 6
    assert "best map 0.9000 at step 2" in sink.messages[-1]


def _stop_after_step_3_then_resume(
    config: TrainConfig, data: TrainData, store: LocalCheckpointStore
) -> tuple[MemorySink, Any]:
    """Train (evaluating every 2 steps), stop after step 3, resume from the ``last`` checkpoint
    of step 2; the resumed attempt's sink and result."""
    first = CancelAfter(step=3)
    train(config, data, first, store, should_cancel=first.should_cancel)
    assert [c.kind for c in first.checkpoints] == ["last", "best"]
    sink = MemorySink()
    return sink, train(config, data, sink, store, resume=store.load("last"))


def test_the_first_evaluation_after_a_resume_keeps_a_better_restored_best(
    toy_data: TrainData, config_factory: ConfigFactory, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    maps = iter([0.6, 0.3, 0.8])  # evaluations at steps 2 | 4 (worse, after the resume), 6
    monkeypatch.setattr(
        loop_module, "validation_metrics", lambda *a: {"loss": 1.0, "map": next(maps)}
    )
    store = LocalCheckpointStore(tmp_path)

    sink, result = _stop_after_step_3_then_resume(config_factory(max_steps=6), toy_data, store)

    # Step 4 is worse than the restored best (0.6 at step 2): only `last` is written there.
    assert [(c.kind, c.step) for c in sink.checkpoints] == [("last", 4), ("last", 6), ("best", 6)]
    assert "step 4: val loss 1.0000, map 0.3000 (best 0.6000)" in sink.messages
    best = store.load("best")
    assert best is not None and (best.step, best.monitor_value) == (6, 0.8)
    assert result.best is not None and result.best.step == 6


def test_early_stopping_counts_evaluations_across_a_resume(
    toy_data: TrainData, config_factory: ConfigFactory, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    maps = iter([0.9, 0.5, 0.4, 0.3])  # best at step 2, then no improvement
    monkeypatch.setattr(
        loop_module, "validation_metrics", lambda *a: {"loss": 1.0, "map": next(maps)}
    )
    config = config_factory(max_steps=20, early_stopping_patience=2)

    sink, result = _stop_after_step_3_then_resume(config, toy_data, LocalCheckpointStore(tmp_path))

    assert (result.stop_reason, result.step) == ("early_stopping", 6)
    assert [c.kind for c in sink.checkpoints] == ["last", "last"]


def test_resuming_a_finished_run_only_scores_it(
    finished_run: Any, config_factory: ConfigFactory, tmp_path: Path
) -> None:
    store = LocalCheckpointStore(tmp_path)
    for kind in ("best", "last"):
        store.save(read_checkpoint(finished_run.directory / f"{kind}.pt"))
    sink = MemorySink()

    result = train(config_factory(), finished_run.data, sink, store, resume=store.load("last"))

    assert (result.status, result.step) == ("succeeded", 4)
    assert sink.metrics == [] and sink.checkpoints == []
    np.testing.assert_allclose(
        result.evaluations["val"].scores, finished_run.result.evaluations["val"].scores, atol=1e-6
    )
