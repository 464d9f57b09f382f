"""Training data: images decoded once per run into a uint8 cache, augmented as tensors.

JPEG decoding must not dominate step time, so every image is decoded, oriented and resized once
(``app.inference.preprocess.to_uint8_chw``, the serving path) into an (N, 3, S, S) uint8 tensor,
held in RAM or memory-mapped from a file under ``cache_dir`` for datasets larger than memory.
Augmentations (torchvision.transforms.v2) run per sample on those tensors in DataLoader workers;
normalisation happens on the device after the batch has moved there.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

from app.inference.preprocess import to_uint8_chw
from worker.training.config import Augmentations

ImageSource = Callable[[int], "bytes | Image.Image"]
Progress = Callable[[int, int], None]


@dataclass
class ImageSet:
    """The images of one split: ``open_image(i)`` returns image i, ``labels[i]`` its 0/1 row."""

    open_image: ImageSource
    labels: np.ndarray  # (n_images, n_labels) 0/1

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass
class TrainData:
    """A frozen dataset: label keys name metrics (``ap/<key>``), train and val image sets."""

    label_keys: Sequence[str]
    train: ImageSet
    val: ImageSet
    label_names: Sequence[str] = ()  # display names; defaults to the keys
    cache_dir: Path | None = None  # memory-map decoded images here instead of holding them in RAM

    def __post_init__(self) -> None:
        self.validate()

    @property
    def names(self) -> list[str]:
        """Display names of the labels, in key order."""
        return [str(n) for n in (self.label_names or self.label_keys)]

    def validate(self) -> None:
        """Raise ValueError when the label matrices, keys or splits do not fit together."""
        n_labels = len(self.label_keys)
        if n_labels == 0:
            raise ValueError("the dataset has no labels")
        if len(set(self.label_keys)) != n_labels:
            raise ValueError("label keys must be unique")
        if len(self.names) != n_labels:
            raise ValueError(f"{len(self.names)} label names for {n_labels} label keys")
        for split, images in (("train", self.train), ("val", self.val)):
            if images.labels.ndim != 2 or images.labels.shape[1] != n_labels:
                raise ValueError(
                    f"{split} labels must be (n_images, {n_labels}), got {images.labels.shape}"
                )
        if len(self.train) < 2:
            raise ValueError("the train split needs at least 2 images")
        if len(self.val) == 0:
            raise ValueError("the val split has no images")


def decode_images(
    images: ImageSet,
    size: int,
    *,
    threads: int = 4,
    cache_file: Path | None = None,
    progress: Progress | None = None,
) -> torch.Tensor:
    """Decode every image once into an (N, 3, size, size) uint8 tensor (memory-mapped if a file).

    A complete ``cache_file`` from an earlier attempt of the same run is reused as is.
    """
    shape = (len(images), 3, size, size)
    if cache_file is not None and _is_complete(cache_file, shape):
        return torch.from_numpy(np.memmap(cache_file, np.uint8, mode="r+", shape=shape))
    partial = cache_file.with_name(cache_file.name + ".partial") if cache_file else None
    if partial is not None:
        partial.parent.mkdir(parents=True, exist_ok=True)
    array = (
        np.memmap(partial, np.uint8, mode="w+", shape=shape)
        if partial is not None
        else np.empty(shape, dtype=np.uint8)
    )

    def decode_one(index: int) -> None:
        try:
            array[index] = to_uint8_chw(images.open_image(index), size)
        except Exception as exc:
            raise ValueError(f"image {index}: cannot decode ({exc})") from exc

    # PIL releases the GIL while decoding and resizing, so threads scale with cores.
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        futures = [pool.submit(decode_one, i) for i in range(len(images))]
        try:
            for done, future in enumerate(as_completed(futures), start=1):
                future.result()
                if progress is not None:
                    progress(done, len(images))
        except BaseException:
            for pending in futures:
                pending.cancel()
            if partial is not None:
                partial.unlink(missing_ok=True)
            raise
    if isinstance(array, np.memmap) and partial is not None and cache_file is not None:
        array.flush()
        # The mapping survives the rename; the final name only ever holds a complete cache.
        os.replace(partial, cache_file)
    return torch.from_numpy(array)


class ProgressThrottle:
    """Which progress counts deserve a log line: the last one, and others at least ``fraction``
    of the total and ``min_interval_s`` seconds after the previous line (so a small set that
    decodes in a moment logs once, and a large one about ten times)."""

    def __init__(
        self,
        total: int,
        *,
        fraction: float = 0.1,
        min_interval_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self.every = max(1, math.ceil(total * fraction))
        self.min_interval_s = min_interval_s
        self.clock = clock
        self.last_done = 0
        self.last_time = clock()

    def due(self, done: int) -> bool:
        """Whether to log ``done`` of ``total`` now (records it as logged if so)."""
        now = self.clock()
        spaced = done - self.last_done >= self.every and now - self.last_time >= self.min_interval_s
        if done >= self.total or spaced:
            self.last_done, self.last_time = done, now
            return True
        return False


def _is_complete(cache_file: Path, shape: tuple[int, ...]) -> bool:
    return cache_file.is_file() and cache_file.stat().st_size == math.prod(shape)


def build_augment(augmentations: Augmentations, size: int) -> v2.Transform | None:
    """Return the per-sample uint8 augmentation pipeline, or None when nothing is enabled."""
    steps: list[v2.Transform] = []
    if augmentations.crop_scale_min < 1.0:
        scale = (augmentations.crop_scale_min, 1.0)
        steps.append(v2.RandomResizedCrop(size, scale=scale, antialias=True))
    if augmentations.hflip > 0:
        steps.append(v2.RandomHorizontalFlip(p=augmentations.hflip))
    if augmentations.vflip > 0:
        steps.append(v2.RandomVerticalFlip(p=augmentations.vflip))
    if augmentations.rotation_degrees > 0:
        steps.append(v2.RandomRotation(augmentations.rotation_degrees))
    if augmentations.brightness > 0 or augmentations.contrast > 0:
        steps.append(
            v2.ColorJitter(brightness=augmentations.brightness, contrast=augmentations.contrast)
        )
    return v2.Compose(steps) if steps else None


class CachedImages(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Samples from the uint8 cache: (augmented uint8 image, float label row)."""

    def __init__(
        self, images: torch.Tensor, labels: np.ndarray, augment: v2.Transform | None
    ) -> None:
        self.images = images
        self.labels = torch.as_tensor(labels, dtype=torch.float32)
        self.augment = augment

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = self.images[index]
        if self.augment is not None:
            image = self.augment(image)
        return image, self.labels[index]


def iterate_batches(
    dataset: CachedImages,
    batch_size: int,
    *,
    seed: int,
    num_workers: int,
    pin_memory: bool = False,
) -> Generator[tuple[torch.Tensor, torch.Tensor], None, None]:
    """Yield shuffled (uint8 images, labels) batches forever, epoch after epoch.

    Each epoch has ``estimate.steps_per_epoch`` batches.
    """
    generator = torch.Generator()
    generator.manual_seed(seed)
    # Dropping the last partial batch keeps BatchNorm away from 1-image batches; a dataset
    # smaller than one batch trains on all of it each step.
    loader = DataLoader(
        dataset,
        batch_size=min(batch_size, len(dataset)),
        shuffle=True,
        drop_last=True,
        generator=generator,
        num_workers=num_workers,
        pin_memory=pin_memory,
        persistent_workers=num_workers > 0,
    )
    while True:
        yield from loader
