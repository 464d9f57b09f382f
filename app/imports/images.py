"""Probe, verify and thumbnail uploaded images, decoding each one once.

The pixel limit is checked against the size declared in the file header, before any pixel is
decoded, so a decompression bomb costs a few bytes of parsing. Headers are read through Pillow's
format plugins directly rather than `Image.open`, whose own bomb check (a process-wide setting)
would fire first and hide the declared size; our `max_pixels` decides and the message names the
size. Pillow's DecompressionBombError raised later (GIF frames, TIFF tiles, MPO frames) is still
turned into a rejection, and so is DecompressionBombWarning where warnings are made errors.

JPEGs are decoded with `draft()`, i.e. libjpeg scales the DCT down by 2, 4 or 8 to no less than
the thumbnail size. The whole entropy-coded stream is still read, so truncation and broken Huffman
data are caught just as with a full-size decode, at a fraction of the cost.

Thumbnails are only ever shrunk by whole factors (area averaging), so their longest side lies
between the requested size and twice that: a JPEG draft usually needs no further resampling at all.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image, ImageFile

from app.imports.rejections import RejectedFile, format_pixel_counts

# Format name (as Pillow reports it) → MIME type. Order matters only for header sniffing speed.
ACCEPTED_FORMATS: dict[str, str] = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
}
# Camera JPEGs carrying a multi-picture index open as MPO; to everyone else they are JPEGs.
_FORMAT_ALIASES = {"MPO": "JPEG"}

_ORIENTATION_TAG = 0x0112
_TRANSPOSE_FOR_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SWAPS_AXES = {5, 6, 7, 8}
_THUMBNAIL_QUALITY = 85
# ISO-BMFF brands of HEIF/HEIC files, which Pillow cannot even identify without a plugin.
_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"}


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """What an asset row records about an image; width and height are after EXIF orientation."""

    width: int
    height: int
    mime: str
    format: str
    bytes: int
    sha256: str


def probe_image(data: bytes, *, filename: str, max_pixels: int) -> ImageInfo:
    """Verify that `data` is a whole, accepted image within `max_pixels` and describe it."""
    info, _image, _orientation = _decode(data, filename=filename, max_pixels=max_pixels, target=1)
    return info


def process_image(
    data: bytes,
    *,
    filename: str,
    max_pixels: int,
    thumb_size: int = 256,
    sha256: str | None = None,
) -> tuple[ImageInfo, bytes]:
    """Verify and describe an image and make its JPEG thumbnail from the same decode.

    The thumbnail's longest side is in [thumb_size, 2×thumb_size), or the image's if smaller.
    `sha256` is the hex digest of `data` where the caller has already computed it.
    """
    info, image, orientation = _decode(
        data, filename=filename, max_pixels=max_pixels, target=thumb_size, sha256=sha256
    )
    try:
        thumbnail = _encode_thumbnail(image, orientation=orientation, size=thumb_size)
    except Exception as exc:  # an exotic mode or palette Pillow cannot convert
        raise RejectedFile(filename, f"cannot make a thumbnail: {_describe(exc)}") from exc
    return info, thumbnail


def make_thumbnail(data: bytes, *, size: int = 256) -> bytes:
    """An EXIF-transposed RGB JPEG, longest side in [size, 2×size) or the original's if smaller."""
    limit = Image.MAX_IMAGE_PIXELS or 2**63
    _info, thumbnail = process_image(data, filename="image", max_pixels=limit, thumb_size=size)
    return thumbnail


def _decode(
    data: bytes, *, filename: str, max_pixels: int, target: int, sha256: str | None = None
) -> tuple[ImageInfo, Image.Image, int]:
    """Open, check limits and fully decode `data` at (at least) `target` pixels on its long side."""
    if not data:
        raise RejectedFile(filename, "empty file (0 bytes)")
    image = _open_header(data, filename)
    image_format = _FORMAT_ALIASES.get(image.format or "", image.format or "")
    width, height = image.size
    if width <= 0 or height <= 0:
        raise RejectedFile(filename, f"corrupt image: declared size {width}×{height}")
    _check_pixels(filename, width, height, max_pixels)
    if image_format == "JPEG":
        image.draft("RGB", _fit(width, height, target))
    try:
        image.load()
    except Image.DecompressionBombError as exc:
        raise RejectedFile(filename, f"image is over the pixel limit ({exc})") from exc
    except Image.DecompressionBombWarning as exc:  # only raised when warnings are errors
        raise RejectedFile(filename, f"image is over the pixel limit ({exc})") from exc
    except Exception as exc:  # any decoder failure on untrusted bytes means a corrupt file
        raise RejectedFile(filename, f"corrupt image: {_describe(exc)}") from exc
    orientation = _orientation(image)
    if orientation in _SWAPS_AXES:
        width, height = height, width
    info = ImageInfo(
        width=width,
        height=height,
        mime=ACCEPTED_FORMATS[image_format],
        format=image_format,
        bytes=len(data),
        sha256=sha256 or hashlib.sha256(data).hexdigest(),
    )
    return info, image, orientation


def _open_header(data: bytes, filename: str) -> ImageFile.ImageFile:
    """Parse the header of an accepted format without decoding pixels, or reject the file."""
    Image.init()
    prefix = data[:16]
    failure: Exception | None = None
    for image_format in ACCEPTED_FORMATS:
        plugin = Image.OPEN.get(image_format)
        if plugin is None:  # Pillow built without this codec
            continue
        factory, accept = plugin
        accepted = True if accept is None else accept(prefix)
        if not accepted or isinstance(accepted, str):  # a str means "recognised, not readable"
            continue
        try:
            return factory(io.BytesIO(data), filename)
        except Image.DecompressionBombError as exc:
            raise RejectedFile(filename, f"image is over the pixel limit ({exc})") from exc
        except Exception as exc:  # like Image.open: try the next plugin, report the first error
            failure = failure or exc
    if failure is not None:
        raise RejectedFile(filename, f"corrupt image: {_describe(failure)}") from failure
    other_format = _identify_other_format(data)
    if other_format is None:
        raise RejectedFile(filename, "not an image (unrecognised format)")
    raise RejectedFile(filename, f"unsupported format '{other_format}'")


def _identify_other_format(data: bytes) -> str | None:
    """Name the format of an image we do not accept (PSD, ICO, ... and phones' HEIC)."""
    if data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
        return "HEIC"
    try:
        with Image.open(io.BytesIO(data)) as other:
            return other.format
    except Image.DecompressionBombError:
        return "oversized image"
    except Exception:
        return None


def _check_pixels(filename: str, width: int, height: int, max_pixels: int) -> None:
    pixels = width * height
    if pixels > max_pixels:
        shown, limit = format_pixel_counts(pixels, max_pixels)
        raise RejectedFile(
            filename, f"image is {width}×{height} = {shown}, over the limit of {limit}"
        )


def _fit(width: int, height: int, size: int) -> tuple[int, int]:
    """The size of (width, height) scaled down so its longest side is `size`."""
    longest = max(width, height)
    if longest <= size:
        return width, height
    return max(1, round(width * size / longest)), max(1, round(height * size / longest))


def _orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(_ORIENTATION_TAG, 1)
    except Exception:  # a broken EXIF block is not a reason to refuse the picture
        return 1
    return value if isinstance(value, int) and value in range(1, 9) else 1


def _encode_thumbnail(image: Image.Image, *, orientation: int, size: int) -> bytes:
    rgb = _to_rgb(image)
    # Area-average by a whole factor only, so the longest side lands in [size, 2×size). An exact
    # `size` needs a fractional resize: ~0.4 ms for 320×240 → 256×192, more than decoding at half
    # scale saves over a full decode. The pages scale thumbnails with CSS anyway, and JPEGs
    # mostly arrive here already DCT-scaled into that range by `draft()`.
    factor = max(rgb.size) // size
    if factor >= 2:
        rgb = rgb.reduce(factor)
    # Transposing after the reduction touches fewer pixels.
    transpose = _TRANSPOSE_FOR_ORIENTATION.get(orientation)
    if transpose is not None:
        rgb = rgb.transpose(transpose)
    output = io.BytesIO()
    rgb.save(output, format="JPEG", quality=_THUMBNAIL_QUALITY)
    return output.getvalue()


def _to_rgb(image: Image.Image) -> Image.Image:
    """Flatten any mode to 8-bit RGB: transparency onto white, 16-bit samples scaled not clipped."""
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if image.mode == "RGB":
        return image
    if image.mode.startswith("I;16") or image.mode == "I":
        scale: Callable[[float], float] = lambda value: value / 256  # noqa: E731
        return image.convert("I").point(scale).convert("L").convert("RGB")
    return image.convert("RGB")


def _describe(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."
