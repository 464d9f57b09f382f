"""Run length and duration estimates."""

from __future__ import annotations

import pytest

from worker.training.config import TrainConfig
from worker.training.estimate import (
    estimate_duration_seconds,
    evaluations_in,
    planned_steps,
    steps_per_epoch,
)


def test_steps_follow_the_configured_length() -> None:
    assert steps_per_epoch(1000, 32) == 31  # the trailing partial batch is dropped
    assert steps_per_epoch(10, 32) == 1  # a dataset smaller than a batch still steps
    assert planned_steps(TrainConfig(epochs=2.5, batch_size=32), 1000) == 78
    assert planned_steps(TrainConfig(max_steps=7), 1000) == 7
    assert planned_steps(TrainConfig(time_budget_minutes=3), 1000) is None


def test_duration_counts_training_and_evaluation_passes() -> None:
    seconds = estimate_duration_seconds(
        total_steps=100,
        batch_size=32,
        train_images_per_second=320.0,
        val_images=600,
        evaluations=evaluations_in(100, 30),
        eval_images_per_second=1200.0,
    )

    assert evaluations_in(100, 30) == 4
    assert seconds == pytest.approx(10.0 + 4 * 0.5)
    with pytest.raises(ValueError):
        estimate_duration_seconds(total_steps=1, batch_size=1, train_images_per_second=0)
