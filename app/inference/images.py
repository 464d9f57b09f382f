"""Checks of images sent for prediction, with errors that name the file and the problem."""

from __future__ import annotations

import io
import warnings

from PIL import Image, UnidentifiedImageError

from app.errors import InvalidInput, TooLarge
from app.inference.preprocess import load_image


def describe_bytes(size: int) -> str:
    """A human size: 512 B, 3.2 MB."""
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def open_upload(data: bytes, *, name: str, max_bytes: int, max_pixels: int) -> Image.Image:
    """Decode an uploaded image (EXIF-oriented RGB) or raise InvalidInput / TooLarge naming it."""
    if len(data) > max_bytes:
        raise TooLarge(
            f"'{name}' is {describe_bytes(len(data))}; the limit is {describe_bytes(max_bytes)}",
            details={"file": name, "bytes": len(data), "max_bytes": max_bytes},
        )
    if not data:
        raise InvalidInput(f"'{name}' is empty, not an image", details={"file": name})
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            # The header's size is checked before any pixel is decoded.
            if width * height > max_pixels:
                raise TooLarge(
                    f"'{name}' is {width}x{height} pixels; the limit is {max_pixels:,} pixels",
                    details={"file": name, "width": width, "height": height},
                )
            image.load()
            return load_image(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise TooLarge(f"'{name}' has too many pixels ({error})", details={"file": name}) from error
    except UnidentifiedImageError as error:
        raise InvalidInput(
            f"'{name}' is not an image (JPEG, PNG, WebP, GIF, BMP or TIFF expected)",
            details={"file": name},
        ) from error
    except (OSError, SyntaxError, ValueError) as error:
        raise InvalidInput(
            f"'{name}' is not a readable image ({error})", details={"file": name}
        ) from error
