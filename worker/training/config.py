"""Every training knob as a named field of one dataclass, JSON round-trippable.

A run stores ``TrainConfig.to_dict()`` in its workflow snapshot and in every checkpoint, so a
config must survive ``from_dict(to_dict())`` unchanged and reject unknown or invalid values with a
message that names the field.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

Optimizer = Literal["adamw", "sgd"]
Schedule = Literal["cosine", "plateau"]
Loss = Literal["bce", "asl"]
Monitor = Literal["map", "macro_f1", "micro_f1"]
Device = Literal["auto", "cpu", "cuda"]

_CHOICES: dict[str, tuple[str, ...]] = {
    "optimizer": ("adamw", "sgd"),
    "schedule": ("cosine", "plateau"),
    "loss": ("bce", "asl"),
    "monitor": ("map", "macro_f1", "micro_f1"),
    "device": ("auto", "cpu", "cuda"),
}
DEFAULT_EPOCHS = 10.0


@dataclass
class Augmentations:
    """Train-time augmentations, applied to the decoded uint8 images; 0 turns one off."""

    hflip: float = 0.5  # probability
    vflip: float = 0.0  # probability
    rotation_degrees: float = 0.0  # uniform in [-d, d]
    brightness: float = 0.0  # ColorJitter factor range [1 - b, 1 + b]
    contrast: float = 0.0
    crop_scale_min: float = 1.0  # RandomResizedCrop area scale in [min, 1]; 1.0 = no crop

    def validate(self) -> None:
        """Raise ValueError naming the first out-of-range field."""
        for name in ("hflip", "vflip"):
            _check(0.0 <= getattr(self, name) <= 1.0, f"augmentations.{name} must be in [0, 1]")
        _check(0.0 <= self.rotation_degrees <= 180.0, "augmentations.rotation_degrees: 0..180")
        _check(self.brightness >= 0.0, "augmentations.brightness must be >= 0")
        _check(self.contrast >= 0.0, "augmentations.contrast must be >= 0")
        _check(0.0 < self.crop_scale_min <= 1.0, "augmentations.crop_scale_min must be in (0, 1]")


@dataclass
class TrainConfig:
    """One training run. Length is exactly one of max_steps, epochs, time_budget_minutes."""

    arch: str = "hgnetv2_b0"
    input_size: int | None = None  # None = the arch's default from the model registry
    pretrained: bool = True
    weights_file: str | None = None  # local state dict to start from (classifier dropped)
    batch_size: int = 32
    max_steps: int | None = None
    epochs: float | None = None  # DEFAULT_EPOCHS when no length is given
    time_budget_minutes: float | None = None  # training loop wall time, evals included
    lr: float = 1e-3
    weight_decay: float = 0.05
    optimizer: Optimizer = "adamw"
    momentum: float = 0.9  # SGD only
    schedule: Schedule = "cosine"
    warmup_steps: int = 0
    plateau_patience: int = 2  # evals without improvement before the lr drops
    plateau_factor: float = 0.1
    loss: Loss = "bce"
    gamma_neg: float = 4.0  # asymmetric loss only
    gamma_pos: float = 0.0
    clip: float = 0.05
    eval_interval: int = 0  # steps between evaluations; 0 = once per epoch
    log_interval: int = 10  # steps between train loss/lr records
    early_stopping_patience: int = 0  # evals without improvement; 0 = off
    monitor: Monitor = "map"
    augmentations: Augmentations = field(default_factory=Augmentations)
    seed: int = 0
    num_workers: int = 2  # DataLoader workers for augmentation; decode threads too
    device: Device = "auto"
    amp: bool = True  # mixed precision on CUDA (bf16 when supported, else fp16 + GradScaler)
    channels_last: bool = True  # on CUDA
    heartbeat_seconds: float = 5.0

    def __post_init__(self) -> None:
        if self.max_steps is None and self.epochs is None and self.time_budget_minutes is None:
            self.epochs = DEFAULT_EPOCHS
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the first invalid field."""
        lengths = [self.max_steps, self.epochs, self.time_budget_minutes]
        _check(
            sum(v is not None for v in lengths) == 1,
            "set exactly one of max_steps, epochs, time_budget_minutes",
        )
        _check(self.max_steps is None or self.max_steps > 0, "max_steps must be > 0")
        _check(self.epochs is None or self.epochs > 0, "epochs must be > 0")
        _check(
            self.time_budget_minutes is None or self.time_budget_minutes > 0,
            "time_budget_minutes must be > 0",
        )
        for name, allowed in _CHOICES.items():
            value = getattr(self, name)
            _check(value in allowed, f"{name} must be one of {', '.join(allowed)} (got {value!r})")
        _check(self.input_size is None or self.input_size >= 16, "input_size must be >= 16")
        _check(self.batch_size > 0, "batch_size must be > 0")
        _check(self.lr > 0, "lr must be > 0")
        _check(self.weight_decay >= 0, "weight_decay must be >= 0")
        _check(0.0 <= self.momentum < 1.0, "momentum must be in [0, 1)")
        _check(self.warmup_steps >= 0, "warmup_steps must be >= 0")
        _check(self.plateau_patience >= 0, "plateau_patience must be >= 0")
        _check(0.0 < self.plateau_factor < 1.0, "plateau_factor must be in (0, 1)")
        _check(self.gamma_neg >= 0 and self.gamma_pos >= 0, "gamma_neg/gamma_pos must be >= 0")
        _check(0.0 <= self.clip < 1.0, "clip must be in [0, 1)")
        _check(self.eval_interval >= 0, "eval_interval must be >= 0")
        _check(self.log_interval > 0, "log_interval must be > 0")
        _check(self.early_stopping_patience >= 0, "early_stopping_patience must be >= 0")
        _check(self.num_workers >= 0, "num_workers must be >= 0")
        _check(self.heartbeat_seconds > 0, "heartbeat_seconds must be > 0")
        self.augmentations.validate()

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (augmentations nested)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build from ``to_dict()`` output; missing fields take defaults, unknown ones fail."""
        values = dict(data)
        augmentations = values.pop("augmentations", None) or {}
        _reject_unknown(cls, values, "")
        _reject_unknown(Augmentations, augmentations, "augmentations.")
        return cls(**values, augmentations=Augmentations(**augmentations))


def _reject_unknown(cls: type, values: dict[str, Any], prefix: str) -> None:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    _check(not unknown, f"unknown training setting(s): {', '.join(prefix + u for u in unknown)}")


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)
