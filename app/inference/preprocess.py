"""The one image preprocessing path shared by training, evaluation and serving.

An image becomes a model input in two stages, and both the trainer and the api use exactly these
functions so scores from ONNX Runtime match scores seen during training:

1. ``to_uint8_chw``: EXIF orientation applied, converted to RGB, resized (squashed, no crop) to
   ``size`` x ``size`` with ``RESAMPLE``, as a (3, H, W) uint8 array. The trainer caches this.
2. ``normalize_uint8_batch``: scaled to [0, 1] and normalised with the ImageNet mean/std, for
   numpy arrays (serving) or torch tensors on any device (training).

This module imports torch only when handed a tensor, so the api can serve with numpy alone.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, overload

import numpy as np
from PIL import ExifTags, Image, ImageOps

if TYPE_CHECKING:
    import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RESAMPLE = Image.Resampling.BILINEAR

_MEAN = np.array(IMAGENET_MEAN, dtype=np.float32).reshape(3, 1, 1)
_STD = np.array(IMAGENET_STD, dtype=np.float32).reshape(3, 1, 1)


def load_image(source: bytes | Image.Image) -> Image.Image:
    """Open encoded bytes (or take an opened image), apply EXIF orientation, convert to RGB."""
    image = Image.open(io.BytesIO(source)) if isinstance(source, bytes | bytearray) else source
    # exif_transpose copies the whole image even when there is nothing to turn; skip that.
    if image.getexif().get(ExifTags.Base.Orientation, 1) != 1:
        image = ImageOps.exif_transpose(image)
    return image if image.mode == "RGB" else image.convert("RGB")


def to_uint8_chw(source: bytes | Image.Image, size: int) -> np.ndarray:
    """Return the image as a (3, size, size) uint8 array: oriented, RGB, resized without crop."""
    image = load_image(source)
    if image.size != (size, size):
        image = image.resize((size, size), RESAMPLE)
    return np.ascontiguousarray(np.asarray(image, dtype=np.uint8).transpose(2, 0, 1))


@overload
def normalize_uint8_batch(batch: np.ndarray) -> np.ndarray: ...


@overload
def normalize_uint8_batch(batch: torch.Tensor) -> torch.Tensor: ...


def normalize_uint8_batch(batch: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """Scale uint8 (..., 3, H, W) images to [0, 1] and normalise with ImageNet mean/std (float32).

    The same float32 operations in the same order for numpy and torch, so both give equal values.
    """
    if isinstance(batch, np.ndarray):
        return (batch.astype(np.float32) / np.float32(255.0) - _MEAN) / _STD
    import torch

    mean = torch.as_tensor(_MEAN, device=batch.device)
    std = torch.as_tensor(_STD, device=batch.device)
    return (batch.to(torch.float32) / 255.0 - mean) / std


def preprocess(image: bytes | Image.Image, size: int) -> np.ndarray:
    """Return the model input for one image: a (3, size, size) float32 array."""
    return normalize_uint8_batch(to_uint8_chw(image, size))
