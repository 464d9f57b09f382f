"""TrainConfig: defaults, validation messages and the JSON round trip."""

from __future__ import annotations

import json

import pytest

from worker.training.config import DEFAULT_EPOCHS, Augmentations, TrainConfig


def test_json_round_trip_keeps_every_field() -> None:
    config = TrainConfig(
        arch="resnet50",
        input_size=256,
        max_steps=500,
        optimizer="sgd",
        schedule="plateau",
        loss="asl",
        monitor="macro_f1",
        augmentations=Augmentations(vflip=0.5, rotation_degrees=15, crop_scale_min=0.6),
    )

    restored = TrainConfig.from_dict(json.loads(json.dumps(config.to_dict())))

    assert restored == config
    assert restored.augmentations.rotation_degrees == 15


def test_length_defaults_to_epochs_and_is_exclusive() -> None:
    assert TrainConfig().epochs == DEFAULT_EPOCHS
    assert TrainConfig(max_steps=10).epochs is None
    assert TrainConfig(time_budget_minutes=5).epochs is None
    with pytest.raises(ValueError, match="exactly one of max_steps, epochs"):
        TrainConfig(max_steps=10, epochs=2)


def test_from_dict_fills_missing_fields_and_rejects_unknown_ones() -> None:
    assert TrainConfig.from_dict({"arch": "resnet18"}).batch_size == TrainConfig().batch_size
    with pytest.raises(ValueError, match=r"unknown training setting.*learning_rate"):
        TrainConfig.from_dict({"learning_rate": 0.1})
    with pytest.raises(ValueError, match=r"augmentations\.blur"):
        TrainConfig.from_dict({"augmentations": {"blur": 1.0}})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"optimizer": "lion"}, "optimizer must be one of adamw, sgd"),
        ({"monitor": "accuracy"}, "monitor must be one of"),
        ({"batch_size": 0}, "batch_size"),
        ({"clip": 1.5}, "clip"),
        ({"augmentations": Augmentations(hflip=2.0)}, r"augmentations\.hflip"),
    ],
)
def test_invalid_values_name_the_field(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TrainConfig(**overrides)  # type: ignore[arg-type]
