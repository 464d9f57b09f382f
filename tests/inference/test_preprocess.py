"""The shared preprocessing: orientation, colour mode, resize, normalisation, numpy/torch parity."""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

from app.inference.preprocess import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    normalize_uint8_batch,
    preprocess,
    to_uint8_chw,
)


def _encode(image: Image.Image, fmt: str = "PNG", **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def _gradient(width: int, height: int) -> Image.Image:
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None, None]
    pixels = np.concatenate([x + 0 * y, y + 0 * x, (x + y) / 2], axis=2)
    return Image.fromarray(pixels.astype(np.uint8), "RGB")


def test_solid_colour_normalises_to_imagenet_formula() -> None:
    image = Image.new("RGB", (50, 30), (255, 0, 128))

    result = preprocess(image, 16)

    assert result.shape == (3, 16, 16)
    assert result.dtype == np.float32
    expected = [
        (v / 255 - m) / s
        for v, m, s in zip((255, 0, 128), IMAGENET_MEAN, IMAGENET_STD, strict=True)
    ]
    np.testing.assert_allclose(result[:, 7, 9], expected, atol=1e-6)


def test_bytes_and_opened_image_give_the_same_input() -> None:
    image = _gradient(40, 24)

    from_bytes = preprocess(_encode(image), 20)
    from_image = preprocess(image, 20)

    np.testing.assert_array_equal(from_bytes, from_image)


def test_exif_orientation_is_applied_before_resizing() -> None:
    upright = _gradient(30, 60)  # portrait as the camera meant it
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: viewers turn it 90 degrees clockwise
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    jpeg = _encode(stored, "JPEG", exif=exif.tobytes(), quality=100)

    oriented = to_uint8_chw(jpeg, 24).astype(int)
    expected = to_uint8_chw(upright, 24).astype(int)
    unrotated = to_uint8_chw(stored, 24).astype(int)

    assert np.abs(oriented - expected).mean() < 3  # JPEG noise only
    assert np.abs(oriented - unrotated).mean() > 20


def test_other_colour_modes_become_rgb() -> None:
    for mode in ("L", "RGBA", "P", "CMYK"):
        image = _gradient(16, 16).convert(mode)

        assert to_uint8_chw(image, 8).shape == (3, 8, 8)


def test_numpy_and_torch_normalisation_agree() -> None:
    batch = np.random.default_rng(0).integers(0, 256, size=(2, 3, 9, 7), dtype=np.uint8)

    from_numpy = normalize_uint8_batch(batch)
    from_torch = normalize_uint8_batch(torch.from_numpy(batch)).numpy()

    assert from_numpy.dtype == np.float32
    assert np.max(np.abs(from_numpy - from_torch)) < 1e-6
    np.testing.assert_allclose(normalize_uint8_batch(batch[0]), from_numpy[0], atol=0)
