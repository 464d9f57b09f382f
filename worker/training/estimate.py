"""How long a run will be: steps from dataset size and length, seconds from a measured rate."""

from __future__ import annotations

import math

from worker.training.config import TrainConfig

# A forward pass without backward and optimizer runs about 3x as many images per second.
EVAL_SPEEDUP = 3.0


def steps_per_epoch(n_images: int, batch_size: int) -> int:
    """Optimizer steps in one pass over ``n_images`` (a trailing partial batch is dropped)."""
    return max(1, n_images // batch_size)


def planned_steps(config: TrainConfig, n_train_images: int) -> int | None:
    """Total optimizer steps of a run, or None when its length is a time budget."""
    if config.max_steps is not None:
        return config.max_steps
    if config.epochs is not None:
        epoch = steps_per_epoch(n_train_images, config.batch_size)
        return max(1, math.ceil(config.epochs * epoch))
    return None


def estimate_duration_seconds(
    *,
    total_steps: int,
    batch_size: int,
    train_images_per_second: float,
    val_images: int = 0,
    evaluations: int = 0,
    eval_images_per_second: float | None = None,
) -> float:
    """Seconds for ``total_steps`` steps plus ``evaluations`` passes over the validation set."""
    if train_images_per_second <= 0:
        raise ValueError("train_images_per_second must be > 0")
    eval_rate = eval_images_per_second or train_images_per_second * EVAL_SPEEDUP
    training = total_steps * batch_size / train_images_per_second
    return training + evaluations * val_images / eval_rate


def evaluations_in(total_steps: int, eval_interval: int) -> int:
    """Number of evaluations in a run: one per interval plus a final one if off the grid."""
    regular = total_steps // eval_interval
    return regular + (0 if total_steps % eval_interval == 0 else 1)
