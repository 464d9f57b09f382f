"""Where and how the math runs: device, mixed precision, memory format, and the training step.

The same code trains on CUDA (AMP in bf16 where supported, else fp16 with a GradScaler;
channels_last) and on CPU (fp32); only the ``Runtime`` differs.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from app.inference.preprocess import normalize_uint8_batch
from worker.training.config import TrainConfig


@dataclass
class Runtime:
    """The device and numeric settings one run uses."""

    device: torch.device
    amp_dtype: torch.dtype | None  # None = full fp32
    channels_last: bool
    scaler: torch.amp.GradScaler | None  # fp16 only

    def describe(self) -> str:
        """Return e.g. 'cuda (NVIDIA H100, bf16 autocast, channels_last)'."""
        parts = []
        if self.device.type == "cuda":
            parts.append(torch.cuda.get_device_name(self.device))
        parts.append(
            f"{str(self.amp_dtype).removeprefix('torch.')} autocast" if self.amp_dtype else "fp32"
        )
        if self.channels_last:
            parts.append("channels_last")
        return f"{self.device.type} ({', '.join(parts)})"

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        """Mixed-precision context for forward passes (a no-op in fp32)."""
        with torch.autocast(
            self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None
        ):
            yield

    def prepare_model(self, model: nn.Module) -> nn.Module:
        """Move the model to the device in the runtime's memory format."""
        model = model.to(self.device)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        return model

    def to_input(self, images: torch.Tensor) -> torch.Tensor:
        """Move a uint8 (N, 3, H, W) batch to the device, then normalise it there."""
        images = images.to(self.device, non_blocking=True)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return normalize_uint8_batch(images)


def select_runtime(config: TrainConfig) -> Runtime:
    """Pick CUDA when present (or demanded), else CPU, with the config's AMP/memory settings."""
    if config.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but no CUDA device is available")
    use_cuda = config.device == "cuda" or (config.device == "auto" and torch.cuda.is_available())
    if not use_cuda:
        return Runtime(torch.device("cpu"), None, False, None)
    amp_dtype: torch.dtype | None = None
    scaler = None
    if config.amp:
        if torch.cuda.is_bf16_supported():
            amp_dtype = torch.bfloat16
        else:
            amp_dtype = torch.float16
            scaler = torch.amp.GradScaler("cuda")
    return Runtime(torch.device("cuda"), amp_dtype, config.channels_last, scaler)


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def build_optimizer(
    model: nn.Module, config: TrainConfig, runtime: Runtime
) -> torch.optim.Optimizer:
    """AdamW or SGD; biases and norm weights (1-d tensors) are exempt from weight decay."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    if config.optimizer == "sgd":
        nesterov = config.momentum > 0
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, nesterov=nesterov)
    return torch.optim.AdamW(groups, lr=config.lr, fused=runtime.device.type == "cuda")


def train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    criterion: nn.Module,
    runtime: Runtime,
    images: torch.Tensor,
    labels: torch.Tensor,
) -> torch.Tensor:
    """One optimizer step on a uint8 batch; returns the loss as a device tensor (no sync)."""
    inputs = runtime.to_input(images)
    targets = labels.to(runtime.device, non_blocking=True)
    with runtime.autocast():
        logits = model(inputs)
    loss: torch.Tensor = criterion(logits.float(), targets)
    optimizer.zero_grad(set_to_none=True)
    if runtime.scaler is not None:
        runtime.scaler.scale(loss).backward()
        runtime.scaler.step(optimizer)
        runtime.scaler.update()
    else:
        loss.backward()
        optimizer.step()
    return loss.detach()
