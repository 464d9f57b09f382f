"""Learning-rate schedule: linear warmup, then cosine decay or reduce-on-plateau.

Cosine decays over training *progress* in [0, 1] (steps done / total steps, or elapsed time /
time budget), so one schedule serves step-, epoch- and time-limited runs. The plateau state is
saved in checkpoints so a resumed run keeps its reduced learning rate.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from worker.training.config import TrainConfig

MIN_LR_RATIO = 0.01  # cosine ends at 1% of the base lr rather than exactly zero


class LrSchedule:
    """Sets each param group's lr from the step, the progress and the plateau scale."""

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.plateau_scale = 1.0
        self.plateau_best = -math.inf
        self.plateau_bad_evals = 0

    def factor(self, step: int, progress: float) -> float:
        """Return the lr multiplier for the optimizer step numbered ``step`` (0-based)."""
        warmup = self.config.warmup_steps
        warm = min(1.0, (step + 1) / warmup) if warmup > 0 else 1.0
        if self.config.schedule == "plateau":
            return warm * self.plateau_scale
        progress = min(max(progress, 0.0), 1.0)
        cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
        return warm * (MIN_LR_RATIO + (1.0 - MIN_LR_RATIO) * cosine)

    def apply(self, optimizer: torch.optim.Optimizer, step: int, progress: float) -> float:
        """Set the lr of every param group for this step and return it."""
        lr = self.config.lr * self.factor(step, progress)
        for group in optimizer.param_groups:
            group["lr"] = lr
        return lr

    def on_eval(self, value: float) -> None:
        """Feed the monitored metric (higher is better); a long enough plateau lowers the lr."""
        if self.config.schedule != "plateau":
            return
        if value > self.plateau_best:
            self.plateau_best = value
            self.plateau_bad_evals = 0
            return
        self.plateau_bad_evals += 1
        if self.plateau_bad_evals > self.config.plateau_patience:
            self.plateau_scale *= self.config.plateau_factor
            self.plateau_bad_evals = 0

    def state_dict(self) -> dict[str, Any]:
        """Return the mutable state for a checkpoint."""
        return {
            "plateau_scale": self.plateau_scale,
            "plateau_best": self.plateau_best,
            "plateau_bad_evals": self.plateau_bad_evals,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore state saved by ``state_dict``."""
        self.plateau_scale = float(state["plateau_scale"])
        self.plateau_best = float(state["plateau_best"])
        self.plateau_bad_evals = int(state["plateau_bad_evals"])
