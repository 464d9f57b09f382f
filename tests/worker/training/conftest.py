"""A toy multi-label problem and a small trained run shared by the trainer tests.

Label k is the presence of a square of colour k somewhere on a noisy grey background: a real
timm backbone separates it in a few dozen steps at 32 x 32 pixels on a CPU.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from worker.training.checkpoint import LocalCheckpointStore
from worker.training.config import TrainConfig
from worker.training.data import ImageSet, TrainData
from worker.training.loop import train
from worker.training.sink import MemorySink, TrainResult

COLOURS = [(230, 30, 30), (30, 200, 30), (40, 60, 230), (240, 240, 240)]
LABEL_KEYS = ["red", "green", "blue", "white"]
FAST_ARCH = "hgnetv2_b0"  # the fastest registry arch on a CPU at 32 px


def make_images(n: int, *, size: int = 32, seed: int = 0, square: int = 2) -> ImageSet:
    """n PNG images with coloured squares of side size/square; labels say which colours."""
    rng = np.random.default_rng(seed)
    labels = (rng.random((n, len(COLOURS))) < 0.5).astype(np.uint8)
    blobs = []
    side = size // square
    for row in labels:
        pixels = rng.integers(60, 120, size=(size, size, 3), dtype=np.uint8)
        for k in np.flatnonzero(row):
            y, x = rng.integers(0, size - side, 2)
            pixels[y : y + side, x : x + side] = COLOURS[k]
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, "PNG")
        blobs.append(buffer.getvalue())
    return ImageSet(open_image=blobs.__getitem__, labels=labels)


@pytest.fixture(scope="session")
def toy_data() -> TrainData:
    """32 train and 16 val toy images."""
    return TrainData(LABEL_KEYS, make_images(32, seed=0), make_images(16, seed=1))


def quick_config(**overrides: object) -> TrainConfig:
    """A config that trains FAST_ARCH for a handful of steps at 32 px on the CPU."""
    values: dict[str, object] = {
        "arch": FAST_ARCH,
        "input_size": 32,
        "pretrained": False,
        "batch_size": 8,
        "max_steps": 4,
        "eval_interval": 2,
        "log_interval": 1,
        "num_workers": 0,
        "device": "cpu",
    }
    values.update(overrides)
    return TrainConfig(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def config_factory() -> Callable[..., TrainConfig]:
    """``quick_config`` for tests."""
    return quick_config


@dataclass
class FinishedRun:
    config: TrainConfig
    data: TrainData
    sink: MemorySink
    result: TrainResult
    directory: Path


@pytest.fixture(scope="session")
def finished_run(toy_data: TrainData, tmp_path_factory: pytest.TempPathFactory) -> FinishedRun:
    """A 4-step run with evaluations at steps 2 and 4, trained once per session."""
    directory = tmp_path_factory.mktemp("run")
    config = quick_config()
    sink = MemorySink()
    result = train(config, toy_data, sink, LocalCheckpointStore(directory))
    return FinishedRun(config, toy_data, sink, result, directory)


@pytest.fixture(scope="session")
def image_factory() -> Callable[..., ImageSet]:
    """``make_images`` for tests."""
    return make_images
