"""The decoded-image cache, augmentations and batching."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from app.inference.preprocess import normalize_uint8_batch, preprocess
from worker.training.config import Augmentations
from worker.training.data import (
    CachedImages,
    ImageSet,
    ProgressThrottle,
    TrainData,
    build_augment,
    decode_images,
    iterate_batches,
)

ImageFactory = Callable[..., ImageSet]


def test_cached_path_matches_the_serving_preprocess(image_factory: ImageFactory) -> None:
    images = image_factory(6, size=37)  # resized to 24: exercises the resample

    cached = decode_images(images, 24, threads=2)
    trained_on = normalize_uint8_batch(cached).numpy()
    served = np.stack([preprocess(images.open_image(i), 24) for i in range(len(images))])

    assert cached.dtype == torch.uint8 and cached.shape == (6, 3, 24, 24)
    assert np.max(np.abs(trained_on - served)) < 1e-5


def test_memory_mapped_cache_is_written_once_and_reused(
    image_factory: ImageFactory, tmp_path: Path
) -> None:
    images = image_factory(5)
    cache_file = tmp_path / "cache" / "train_32px.u8"
    progress: list[tuple[int, int]] = []

    first = decode_images(images, 32, cache_file=cache_file, progress=lambda *p: progress.append(p))
    opened: list[int] = []

    def open_counting(index: int) -> bytes | Image.Image:
        opened.append(index)
        return images.open_image(index)

    counting = ImageSet(open_counting, images.labels)
    second = decode_images(counting, 32, cache_file=cache_file)

    assert cache_file.stat().st_size == 5 * 3 * 32 * 32
    assert not list(cache_file.parent.glob("*.partial"))
    assert progress[-1] == (5, 5) and len(progress) == 5
    assert opened == []  # served from the file
    assert torch.equal(first, second)


def test_an_undecodable_image_is_named(image_factory: ImageFactory, tmp_path: Path) -> None:
    good = image_factory(3)
    broken = ImageSet(lambda i: b"not an image" if i == 2 else good.open_image(i), good.labels)
    cache_file = tmp_path / "val_32px.u8"

    with pytest.raises(ValueError, match="image 2: cannot decode"):
        decode_images(broken, 32, cache_file=cache_file)
    assert list(tmp_path.iterdir()) == []  # no half-written cache is left or taken as complete


def test_open_image_may_return_pil_images() -> None:
    red = Image.new("RGB", (10, 10), (255, 0, 0))
    images = ImageSet(lambda i: red, np.zeros((2, 1), dtype=np.uint8))

    cached = decode_images(images, 8)

    assert cached[:, 0].min() == 255 and cached[:, 1:].max() == 0


def test_augmentations_keep_uint8_images_of_the_training_size() -> None:
    assert build_augment(Augmentations(hflip=0), 32) is None
    augment = build_augment(
        Augmentations(hflip=1.0, vflip=0.5, rotation_degrees=20, brightness=0.3, contrast=0.3,
                      crop_scale_min=0.5),
        32,
    )  # fmt: skip
    image = torch.arange(3 * 32 * 32, dtype=torch.int64).remainder(256).to(torch.uint8)
    image = image.reshape(3, 32, 32)

    assert augment is not None
    out = augment(image)
    assert out.dtype == torch.uint8 and out.shape == (3, 32, 32)
    flip_only = build_augment(Augmentations(hflip=1.0), 32)
    assert flip_only is not None
    assert torch.equal(flip_only(image), image.flip(-1))


def test_batches_are_shuffled_full_batches_forever() -> None:
    images = torch.arange(10, dtype=torch.uint8).reshape(10, 1, 1, 1).expand(10, 3, 2, 2)
    labels = np.arange(10).reshape(10, 1)
    batches = iterate_batches(CachedImages(images, labels, None), 4, seed=0, num_workers=0)

    drawn = [next(batches) for _ in range(6)]  # 3 epochs of 2 full batches

    assert all(b[0].shape == (4, 3, 2, 2) and b[1].dtype == torch.float32 for b in drawn)
    first_epoch = torch.cat([drawn[0][1], drawn[1][1]]).flatten().tolist()
    assert len(set(first_epoch)) == 8
    assert first_epoch != sorted(first_epoch)
    assert all(torch.equal(b[0][:, 0, 0, 0].float(), b[1][:, 0]) for b in drawn)


def test_train_data_rejects_mismatched_labels(image_factory: ImageFactory) -> None:
    images = image_factory(4)

    with pytest.raises(ValueError, match=r"val labels must be \(n_images, 3\)"):
        TrainData(["a", "b", "c"], ImageSet(images.open_image, images.labels[:, :3]), images)
    with pytest.raises(ValueError, match="label keys must be unique"):
        TrainData(["a", "a", "b", "c"], images, images)


def _logged_counts(total: int, seconds_per_image: float) -> list[int]:
    now = [0.0]
    throttle = ProgressThrottle(total, clock=lambda: now[0])
    logged = []
    for done in range(1, total + 1):
        now[0] += seconds_per_image
        if throttle.due(done):
            logged.append(done)
    return logged


def test_progress_lines_are_throttled_to_tenths_and_seconds() -> None:
    assert _logged_counts(100, 0.5) == [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]  # 5 s a tenth
    assert _logged_counts(100, 0.125) == [16, 32, 48, 64, 80, 96, 100]  # every 2 s
    assert _logged_counts(16, 0.01) == [16]  # a small set decoded at once: the final line
    assert _logged_counts(3, 5.0) == [1, 2, 3]
