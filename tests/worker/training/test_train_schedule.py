"""The learning-rate schedule: warmup, cosine over progress, plateau drops and their state."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from worker.training.config import TrainConfig
from worker.training.schedule import MIN_LR_RATIO, LrSchedule


def test_warmup_then_cosine_from_lr_to_its_floor() -> None:
    schedule = LrSchedule(TrainConfig(lr=0.1, max_steps=100, warmup_steps=10))

    assert schedule.factor(0, 0.0) == pytest.approx(0.1)
    assert schedule.factor(9, 0.09) == pytest.approx(1.0, abs=0.03)
    assert schedule.factor(50, 0.5) == pytest.approx(0.5 + MIN_LR_RATIO / 2)
    assert schedule.factor(100, 1.0) == pytest.approx(MIN_LR_RATIO)


def test_apply_sets_every_param_group() -> None:
    parameter = torch.nn.Parameter(torch.zeros(2))
    groups: list[dict[str, Any]] = [{"params": [parameter]}, {"params": []}]
    optimizer = torch.optim.SGD(groups, lr=1.0)
    schedule = LrSchedule(TrainConfig(lr=0.2, max_steps=10))

    lr = schedule.apply(optimizer, 5, 0.5)

    assert [group["lr"] for group in optimizer.param_groups] == [lr, lr]
    assert lr == pytest.approx(0.2 * schedule.factor(5, 0.5))


def test_plateau_drops_after_patience_and_state_survives_a_round_trip() -> None:
    config = TrainConfig(schedule="plateau", plateau_patience=1, plateau_factor=0.5, max_steps=9)
    schedule = LrSchedule(config)
    for value in (0.5, 0.6, 0.6, 0.55):  # best 0.6, then two evals without improvement
        schedule.on_eval(value)

    restored = LrSchedule(config)
    restored.load_state_dict(schedule.state_dict())

    assert schedule.factor(3, 0.3) == pytest.approx(0.5)
    assert restored.factor(3, 0.3) == pytest.approx(0.5)
    restored.on_eval(0.59)
    restored.on_eval(0.58)
    assert restored.factor(4, 0.4) == pytest.approx(0.25)
