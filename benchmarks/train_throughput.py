"""Training throughput: Polytag's trainer step (uint8 cache decoded once, DataLoader with tensor
augmentations, lr schedule, on-device normalisation, AMP where available) next to two baselines
measured in the same run on the same backbone, batch size and resolution:

- ``bare_timm_loop``: a minimal timm loop over the same pre-decoded uint8 tensors (random
  batches, no augmentation, no DataLoader): the ceiling for the step itself;
- ``naive_pil_every_epoch``: the same loop fed by a DataLoader whose dataset decodes and resizes
  every JPEG with Pillow on every visit.

The loops take turns in blocks of steps (rotating order, medians), so a busy machine slows all
three alike. Prints one JSON object: images/s of each, the ratios, the one-time decode cost.

    .venv/bin/python benchmarks/train_throughput.py          # hgnetv2_b0, 64 px, CPU: ~1 minute
    .venv/bin/python benchmarks/train_throughput.py --arch resnet50 --size 320 --batch 64 \\
        --images 1024 --source-size 1600 --block 10 --rounds 5 --workers 8   # a GPU-sized run
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import timm
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from app.inference.preprocess import to_uint8_chw
from worker.training.config import TrainConfig
from worker.training.data import (
    CachedImages,
    ImageSet,
    build_augment,
    decode_images,
    iterate_batches,
)
from worker.training.losses import build_loss
from worker.training.models import create_model, get_arch
from worker.training.runtime import build_optimizer, select_runtime, train_step
from worker.training.schedule import LrSchedule

N_LABELS = 8


def make_dataset(count: int, source_size: int, seed: int = 0) -> tuple[list[bytes], np.ndarray]:
    """Photo-sized JPEGs (noise plus coloured rectangles) and random multi-label targets."""
    rng = np.random.default_rng(seed)
    labels = (rng.random((count, N_LABELS)) < 0.3).astype(np.uint8)
    blobs = []
    height, width = source_size * 3 // 4, source_size
    for row in labels:
        pixels = rng.normal(120, 30, (height, width, 3)).clip(0, 255).astype(np.uint8)
        for k in np.flatnonzero(row):
            y, x = rng.integers(0, height // 2), rng.integers(0, width // 2)
            pixels[y : y + height // 3, x : x + width // 3] = (k * 31 % 256, k * 67 % 256, 200)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, "JPEG", quality=90)
        blobs.append(buffer.getvalue())
    return blobs, labels


Step = Callable[[], torch.Tensor]  # one training step; returns the loss on the device


def polytag_step(config: TrainConfig, cache: torch.Tensor, labels: np.ndarray) -> Step:
    """One step exactly as ``train()`` takes it: DataLoader over the uint8 cache with the
    configured augmentations, lr schedule, on-device normalisation, AMP/scaler, optimizer."""
    runtime = select_runtime(config)
    model = runtime.prepare_model(
        create_model(config.arch, N_LABELS, pretrained=False, log=lambda _: None)
    )
    optimizer = build_optimizer(model, config, runtime)
    criterion, schedule = build_loss(config), LrSchedule(config)
    augment = build_augment(config.augmentations, cache.shape[-1])
    batches = iterate_batches(
        CachedImages(cache, labels, augment), config.batch_size, seed=0,
        num_workers=config.num_workers, pin_memory=runtime.device.type == "cuda",
    )  # fmt: skip
    counter = itertools.count()

    def step() -> torch.Tensor:
        images, targets = next(batches)
        schedule.apply(optimizer, next(counter), 0.0)
        return train_step(model, optimizer, criterion, runtime, images, targets)

    return step


def timm_step(config: TrainConfig, batches: Iterator[tuple[torch.Tensor, torch.Tensor]]) -> Step:
    """A bare timm step on the batches given: forward, BCE, backward, AdamW."""
    runtime = select_runtime(config)
    model = timm.create_model(get_arch(config.arch).timm_name, num_classes=N_LABELS)
    model = runtime.prepare_model(model).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr)
    criterion = torch.nn.BCEWithLogitsLoss()

    def step() -> torch.Tensor:
        images, targets = next(batches)
        with runtime.autocast():
            logits = model(runtime.to_input(images))
        loss = criterion(logits.float(), targets.to(runtime.device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.detach()

    return step


def random_batches(
    cache: torch.Tensor, labels: np.ndarray, batch_size: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Random batches straight from the pre-decoded uint8 tensor: no DataLoader, no augment."""
    targets = torch.as_tensor(labels, dtype=torch.float32)
    generator = torch.Generator().manual_seed(0)
    while True:
        index = torch.randint(0, cache.shape[0], (batch_size,), generator=generator)
        yield cache[index], targets[index]


class _DecodeEveryTime(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    def __init__(self, blobs: list[bytes], labels: np.ndarray, size: int) -> None:
        self.blobs, self.labels, self.size = blobs, labels, size

    def __len__(self) -> int:
        return len(self.blobs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = torch.from_numpy(to_uint8_chw(self.blobs[index], self.size))
        return image, torch.as_tensor(self.labels[index], dtype=torch.float32)


def decoding_batches(
    blobs: list[bytes], labels: np.ndarray, size: int, config: TrainConfig
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """A DataLoader that decodes and resizes every JPEG with Pillow on every visit."""
    loader = DataLoader(
        _DecodeEveryTime(blobs, labels, size), batch_size=config.batch_size, shuffle=True,
        drop_last=True, num_workers=config.num_workers,
        persistent_workers=config.num_workers > 0,
    )  # fmt: skip
    while True:
        yield from loader


def measure(steps: dict[str, Step], batch_size: int, block: int, rounds: int) -> dict[str, float]:
    """Median images/s per variant over ``rounds`` blocks of ``block`` steps, after a warmup
    block each; the order rotates every round so a load change on the machine hits all alike."""
    names = list(steps)
    rates: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(rounds + 1):
        order = names[round_index % len(names) :] + names[: round_index % len(names)]
        for name in order:
            started = time.perf_counter()
            for _ in range(block):
                loss = steps[name]()
            loss.item()  # wait for the device before stopping the clock
            if round_index > 0:  # round 0 warms up allocators, caches and workers
                rates[name].append(block * batch_size / (time.perf_counter() - started))
    return {name: statistics.median(values) for name, values in rates.items()}


def main() -> None:
    """Parse flags, run the three loops, print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="hgnetv2_b0")
    parser.add_argument("--size", type=int, default=64, help="training resolution")
    parser.add_argument("--source-size", type=int, default=512, help="JPEG width")
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--block", type=int, default=4, help="steps per timed block")
    parser.add_argument("--rounds", type=int, default=3, help="timed blocks per loop")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers (all loops)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    args = parser.parse_args()

    config = TrainConfig(
        arch=args.arch, input_size=args.size, pretrained=False, batch_size=args.batch,
        num_workers=args.workers, device=args.device, max_steps=1,
    )  # fmt: skip
    blobs, labels = make_dataset(args.images, args.source_size)
    started = time.perf_counter()
    cache = decode_images(ImageSet(blobs.__getitem__, labels), args.size)
    decode_seconds = time.perf_counter() - started
    torch.manual_seed(0)
    rates = measure(
        {
            "polytag": polytag_step(config, cache, labels),
            "bare_timm_loop": timm_step(config, random_batches(cache, labels, args.batch)),
            "naive_pil_every_epoch": timm_step(
                config, decoding_batches(blobs, labels, args.size, config)
            ),
        },
        args.batch,
        args.block,
        args.rounds,
    )
    polytag = rates["polytag"]
    print(
        json.dumps(
            {
                "benchmark": "train_throughput",
                "device": select_runtime(config).describe(),
                "torch_threads": torch.get_num_threads(),
                "arch": args.arch,
                "input_size": args.size,
                "source_jpeg": f"{args.source_size}x{args.source_size * 3 // 4}",
                "batch_size": args.batch,
                "images": args.images,
                "timed_steps_per_loop": args.block * args.rounds,
                "dataloader_workers": args.workers,
                "polytag_augmentations": config.to_dict()["augmentations"],
                "decode_once_seconds": round(decode_seconds, 3),
                "decode_once_images_per_second": round(args.images / decode_seconds, 1),
                "images_per_second": {name: round(rate, 2) for name, rate in rates.items()},
                "ratios": {
                    "polytag_vs_bare": round(polytag / rates["bare_timm_loop"], 3),
                    "polytag_vs_naive": round(polytag / rates["naive_pil_every_epoch"], 3),
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
