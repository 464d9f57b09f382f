import hashlib
import io
import struct
import zlib

import pytest
from PIL import Image, ImageOps

from app.imports.images import make_thumbnail, probe_image, process_image
from app.imports.rejections import RejectedFile

LIMIT = 89_478_485


def encode(image: Image.Image, image_format: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def two_tone(size: tuple[int, int] = (40, 30)) -> Image.Image:
    """Red left half, blue right half: orientation mistakes show up as wrong colours."""
    image = Image.new("RGB", size, (255, 0, 0))
    image.paste((0, 0, 255), (size[0] // 2, 0, size[0], size[1]))
    return image


def pixel(image: Image.Image, xy: tuple[int, int]) -> tuple[int, ...]:
    value = image.convert("RGB").getpixel(xy)
    assert isinstance(value, tuple)
    return value


def png_chunk(tag: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(tag + payload)
    return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", crc)


def png_with_garbage_pixels(width: int, height: int) -> bytes:
    """A PNG whose header is valid but whose pixel data is not even zlib."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", b"definitely not zlib")
        + png_chunk(b"IEND", b"")
    )


def reject_reason(data: bytes, max_pixels: int = LIMIT) -> str:
    with pytest.raises(RejectedFile) as caught:
        probe_image(data, filename="upload.bin", max_pixels=max_pixels)
    assert caught.value.filename == "upload.bin"
    return caught.value.reason


@pytest.mark.parametrize(
    ("image_format", "mime", "options"),
    [
        ("JPEG", "image/jpeg", {"quality": 90}),
        ("PNG", "image/png", {}),
        ("WEBP", "image/webp", {}),
        ("BMP", "image/bmp", {}),
        ("TIFF", "image/tiff", {}),
        ("GIF", "image/gif", {}),
    ],
)
def test_each_accepted_format_is_described(image_format: str, mime: str, options: dict) -> None:
    data = encode(two_tone(), image_format, **options)

    info = probe_image(data, filename=f"a.{image_format.lower()}", max_pixels=LIMIT)

    assert (info.width, info.height) == (40, 30)
    assert (info.format, info.mime) == (image_format, mime)
    assert info.bytes == len(data)
    assert info.sha256 == hashlib.sha256(data).hexdigest()


def test_animated_gif_uses_the_first_frame() -> None:
    frames = [Image.new("RGB", (20, 10), colour) for colour in ("red", "green", "blue")]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50)

    info, thumbnail = process_image(data, filename="a.gif", max_pixels=LIMIT, thumb_size=8)

    assert (info.width, info.height, info.format) == (20, 10, "GIF")
    red, green, blue = pixel(Image.open(io.BytesIO(thumbnail)), (4, 2))
    assert red > 200 and green < 60 and blue < 60


def test_multi_picture_jpeg_counts_as_jpeg() -> None:
    data = encode(two_tone(), "MPO", save_all=True, append_images=[two_tone()])
    assert Image.open(io.BytesIO(data)).format == "MPO"

    info = probe_image(data, filename="camera.jpg", max_pixels=LIMIT)

    assert (info.format, info.mime, info.width) == ("JPEG", "image/jpeg", 40)


@pytest.mark.parametrize("image_format", ["JPEG", "PNG", "WEBP"])
def test_exif_orientation_6_swaps_axes_and_rotates_the_thumbnail(image_format: str) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    original = two_tone()
    data = encode(original, image_format, exif=exif.tobytes())

    info, thumbnail_bytes = process_image(
        data, filename="portrait", max_pixels=LIMIT, thumb_size=16
    )

    assert (info.width, info.height) == (30, 40)
    thumbnail = Image.open(io.BytesIO(thumbnail_bytes))
    assert thumbnail.size == (15, 20)  # halved, then turned upright
    # Orientation 6 is "rotate 90° clockwise to display": the red left half ends up on top.
    expected = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
    assert pixel(expected, (15, 2))[0] > 200
    top, bottom = pixel(thumbnail, (7, 1)), pixel(thumbnail, (7, 18))
    assert top[0] > 200 and top[2] < 60
    assert bottom[2] > 200 and bottom[0] < 60


def test_truncated_jpeg_is_rejected_as_corrupt() -> None:
    data = encode(Image.effect_noise((64, 64), 40).convert("RGB"), "JPEG")

    reason = reject_reason(data[: len(data) // 2])

    assert reason.startswith("corrupt image: ")
    assert "truncated" in reason


def test_truncated_jpeg_is_rejected_when_making_a_thumbnail_too() -> None:
    data = encode(Image.effect_noise((640, 480), 40).convert("RGB"), "JPEG")

    with pytest.raises(RejectedFile, match="corrupt image"):
        process_image(data[:-300], filename="a.jpg", max_pixels=LIMIT, thumb_size=64)


def test_png_with_broken_pixel_data_is_rejected_as_corrupt() -> None:
    assert reject_reason(png_with_garbage_pixels(10, 10)).startswith("corrupt image: ")


def test_text_is_not_an_image() -> None:
    assert reject_reason(b"filename,label\na.jpg,cat\n") == "not an image (unrecognised format)"


def test_empty_file_is_rejected() -> None:
    assert reject_reason(b"") == "empty file (0 bytes)"


def test_readable_but_unaccepted_format_is_named() -> None:
    data = encode(Image.new("RGB", (8, 8)), "PPM")

    assert reject_reason(data) == "unsupported format 'PPM'"


def test_decompression_bomb_is_refused_from_its_header_before_decoding() -> None:
    # 50000×50000 declared in 70-odd bytes; its pixel data is garbage, so a decode attempt
    # would say "corrupt" — the size message proves nothing was decoded.
    data = png_with_garbage_pixels(50_000, 50_000)
    assert len(data) < 100

    reason = reject_reason(data, max_pixels=LIMIT)

    assert reason == "image is 50000×50000 = 2500 megapixels, over the limit of 89 megapixels"


def test_pixel_limit_is_inclusive() -> None:
    data = encode(two_tone(), "PNG")

    assert probe_image(data, filename="a.png", max_pixels=1200).width == 40
    assert reject_reason(data, max_pixels=1199) == (
        "image is 40×30 = 1,200 pixels, over the limit of 1,199 pixels"
    )


def test_pillow_bomb_error_during_decode_becomes_a_rejection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # TIFF checks its tile size against Pillow's own limit when pixels are loaded.
    data = encode(Image.new("RGB", (100, 100)), "TIFF")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)

    assert reject_reason(data, max_pixels=10**6).startswith("image is over the pixel limit (")


def test_jpeg_thumbnail_is_the_dct_scaled_decode_when_that_is_under_twice_the_size() -> None:
    data = encode(Image.new("RGB", (1000, 500), "green"), "JPEG")

    thumbnail = Image.open(io.BytesIO(make_thumbnail(data, size=256)))

    # libjpeg halves 1000×500 while decoding; 500 is under 2×256, so nothing is resampled.
    assert (thumbnail.format, thumbnail.mode, thumbnail.size) == ("JPEG", "RGB", (500, 250))


def test_other_formats_shrink_by_a_whole_factor() -> None:
    data = encode(Image.new("RGB", (1000, 500), "green"), "PNG")

    thumbnail = Image.open(io.BytesIO(make_thumbnail(data, size=256)))

    assert thumbnail.size == (334, 167)  # 1000 // 256 = 3, rounded up


def test_jpeg_larger_than_an_eighth_scale_decode_is_reduced_further() -> None:
    data = encode(Image.new("RGB", (4096, 2048), "green"), "JPEG")

    thumbnail = Image.open(io.BytesIO(make_thumbnail(data, size=100)))

    # Decoded at 1/8 (512×256), then averaged over 5×5 blocks.
    assert thumbnail.size == (103, 52)
    assert 100 <= max(thumbnail.size) < 200


def test_shrinking_averages_pixels_instead_of_dropping_them() -> None:
    # One-pixel black and white squares.
    checkerboard = Image.frombytes("L", (512, 512), bytes([0, 255] * 256 + [255, 0] * 256) * 256)
    data = encode(checkerboard, "PNG")

    thumbnail = Image.open(io.BytesIO(make_thumbnail(data, size=128)))

    assert thumbnail.size == (128, 128)
    # Skipping pixels would leave black or white; averaging leaves mid grey everywhere.
    assert all(100 <= channel <= 155 for channel in pixel(thumbnail, (40, 70)))


def test_small_images_are_not_upscaled() -> None:
    data = encode(Image.new("RGB", (100, 50), "green"), "PNG")

    assert Image.open(io.BytesIO(make_thumbnail(data, size=256))).size == (100, 50)


def test_transparency_is_flattened_onto_white() -> None:
    image = Image.new("RGBA", (20, 20), (0, 0, 0, 0))
    image.paste((0, 0, 0, 255), (0, 0, 10, 20))
    data = encode(image, "PNG")

    thumbnail = Image.open(io.BytesIO(make_thumbnail(data, size=20)))

    assert min(pixel(thumbnail, (17, 10))) > 240
    assert max(pixel(thumbnail, (2, 10))) < 20


def test_sixteen_bit_greyscale_is_scaled_not_clipped() -> None:
    data = encode(Image.new("I;16", (16, 16), 32768), "PNG")

    grey = pixel(Image.open(io.BytesIO(make_thumbnail(data, size=16))), (8, 8))

    assert all(118 <= channel <= 138 for channel in grey)


def test_cmyk_jpeg_makes_an_rgb_thumbnail() -> None:
    data = encode(Image.new("CMYK", (64, 32), (0, 255, 255, 0)), "JPEG")

    info, thumbnail = process_image(data, filename="print.jpg", max_pixels=LIMIT, thumb_size=32)

    assert (info.width, info.height) == (64, 32)
    red, green, blue = pixel(Image.open(io.BytesIO(thumbnail)), (16, 8))
    assert red > 200 and green < 60 and blue < 60


def test_process_and_probe_agree() -> None:
    data = encode(Image.effect_noise((640, 480), 40).convert("RGB"), "JPEG")

    info, thumbnail = process_image(data, filename="a.jpg", max_pixels=LIMIT)

    assert info == probe_image(data, filename="a.jpg", max_pixels=LIMIT)
    assert Image.open(io.BytesIO(thumbnail)).size == (320, 240)  # the 1/2-scale JPEG decode


def test_iphone_heic_is_named_as_unsupported() -> None:
    data = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64)

    assert reject_reason(data) == "unsupported format 'HEIC'"
