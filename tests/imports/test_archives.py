import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from app.imports.archives import ZipEntry, iter_zip, normalise_member_path
from app.imports.rejections import ArchiveRejected, RejectedFile, format_bytes

MB = 1024 * 1024


def make_zip(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name), data, compress_type=compression)
    return buffer.getvalue()


def read_all(
    data: bytes,
    *,
    max_total_uncompressed: int = 10 * MB,
    max_member_bytes: int = 5 * MB,
    max_members: int = 100,
    include: Callable[[str], bool] | None = None,
) -> list[ZipEntry | tuple[str, str]]:
    """Entries as they are, rejections as (file name, reason)."""
    items = iter_zip(
        io.BytesIO(data),
        max_total_uncompressed=max_total_uncompressed,
        max_member_bytes=max_member_bytes,
        max_members=max_members,
        archive_name="upload.zip",
        include=include,
    )
    return [
        (item.filename, item.reason) if isinstance(item, RejectedFile) else item
        for item in items
    ]


def test_yields_files_with_normalised_paths_and_skips_folders_and_junk() -> None:
    data = make_zip({
        "photos/": b"",
        "photos/a.jpg": b"AAA",
        "photos\\b.jpg": b"BB",
        "./photos/sub/../c.jpg": b"C",
        "__MACOSX/photos/._a.jpg": b"resource fork",
        "photos/._a.jpg": b"resource fork",
        "photos/.DS_Store": b"finder",
    })

    items = read_all(data)

    assert items == [
        ZipEntry("photos/a.jpg", b"AAA"),
        ZipEntry("photos/b.jpg", b"BB"),
        ZipEntry("photos/c.jpg", b"C"),
    ]


@pytest.mark.parametrize(
    "name", ["../evil.txt", "/abs.txt", "C:\\x", "c:/windows/x.dll", "a\\..\\..\\b", "\\\\srv\\x"]
)
def test_member_escaping_the_archive_is_rejected_and_others_still_come(name: str) -> None:
    data = make_zip({name: b"evil", "good.jpg": b"ok"})

    items = read_all(data)

    assert items == [(name, "path escapes the archive"), ZipEntry("good.jpg", b"ok")]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a/b.jpg", "a/b.jpg"),
        ("a\\b.jpg", "a/b.jpg"),
        ("./a//b.jpg", "a/b.jpg"),
        ("a/../b.jpg", "b.jpg"),
        ("dir/", "dir/"),
        ("../b.jpg", None),
        ("a/../../b.jpg", None),
        ("/b.jpg", None),
        ("D:b.jpg", None),
        ("a\x00.jpg", None),
    ],
)
def test_normalise_member_path(raw: str, expected: str | None) -> None:
    assert normalise_member_path(raw) == expected


def test_total_declared_size_over_limit_rejects_before_extracting_anything() -> None:
    data = make_zip({"a.jpg": b"ok", "zeros.bin": bytes(3 * MB)})
    assert len(data) < 20_000  # small upload, big promise

    iterator = iter_zip(
        io.BytesIO(data),
        max_total_uncompressed=2 * MB,
        max_member_bytes=5 * MB,
        max_members=10,
        archive_name="bomb.zip",
    )
    with pytest.raises(ArchiveRejected) as caught:
        next(iterator)

    assert caught.value.archive == "bomb.zip"
    assert caught.value.reason == "uncompressed size 3 MB is over the limit of 2 MB"
    assert str(caught.value) == "bomb.zip: uncompressed size 3 MB is over the limit of 2 MB"


def test_member_over_its_own_limit_is_rejected_alone() -> None:
    data = make_zip({"big.tif": bytes(2 * MB), "small.jpg": b"ok"})

    items = read_all(data, max_member_bytes=1 * MB)

    assert items == [
        ("big.tif", "file is 2 MB uncompressed, over the limit of 1 MB"),
        ZipEntry("small.jpg", b"ok"),
    ]


def test_too_many_entries_rejects_the_archive() -> None:
    data = make_zip({f"{index}.jpg": b"x" for index in range(5)})

    with pytest.raises(ArchiveRejected, match="it has 5 entries, over the limit of 4"):
        read_all(data, max_members=4)


def _patch_uncompressed_size(data: bytes, size: int) -> bytes:
    """Make both the local and the central header of the only member declare `size`."""
    patched = bytearray(data)
    local = patched.index(b"PK\x03\x04")
    patched[local + 22 : local + 26] = size.to_bytes(4, "little")
    central = patched.index(b"PK\x01\x02")
    patched[central + 24 : central + 28] = size.to_bytes(4, "little")
    return bytes(patched)


def test_headers_that_understate_the_size_cannot_inflate_past_it() -> None:
    honest = make_zip({"liar.bin": bytes(4 * MB)})
    lying = _patch_uncompressed_size(honest, 100)

    items = read_all(lying, max_member_bytes=1000, max_total_uncompressed=1000)

    assert len(items) == 1
    assert isinstance(items[0], tuple)
    filename, reason = items[0]
    assert filename == "liar.bin"
    assert reason.startswith("corrupt archive entry: ")
    assert "CRC" in reason


def test_not_a_zip_is_rejected_with_the_archive_name(tmp_path: Path) -> None:
    path = tmp_path / "holiday.zip"
    path.write_bytes(b"this is a text file, not an archive")

    with pytest.raises(ArchiveRejected) as caught:
        list(iter_zip(path, max_total_uncompressed=MB, max_member_bytes=MB, max_members=9))

    assert (caught.value.archive, caught.value.reason) == ("holiday.zip", "not a zip archive")


def test_zip_cut_short_is_rejected() -> None:
    data = make_zip({"a.jpg": b"x" * 1000})

    with pytest.raises(ArchiveRejected, match="not a zip archive"):
        read_all(data[: len(data) // 2])


def test_damaged_central_directory_is_reported_as_corrupt() -> None:
    data = bytearray(make_zip({"a.jpg": b"x" * 1000}))
    central = data.index(b"PK\x01\x02")
    data[central : central + 4] = b"XXXX"

    with pytest.raises(ArchiveRejected, match=r"^upload\.zip: corrupt zip archive: "):
        read_all(bytes(data))


def test_encrypted_member_is_rejected() -> None:
    data = bytearray(make_zip({"secret.jpg": b"not really encrypted", "open.jpg": b"ok"}))
    # Set the "encrypted" bit of the first member in its local and central headers.
    data[data.index(b"PK\x03\x04") + 6] |= 0x1
    data[data.index(b"PK\x01\x02") + 8] |= 0x1

    assert read_all(bytes(data)) == [
        ("secret.jpg", "file is encrypted (password-protected archive)"),
        ZipEntry("open.jpg", b"ok"),
    ]


def test_duplicate_paths_after_normalising_are_rejected() -> None:
    data = make_zip({"a/b.jpg": b"1", "a\\b.jpg": b"2"})

    assert read_all(data) == [
        ZipEntry("a/b.jpg", b"1"),
        ("a/b.jpg", "duplicate path in the archive"),
    ]


def test_include_reads_only_chosen_members_and_counts_only_them() -> None:
    data = make_zip({"index.csv": b"path,cat\n", "huge.bin": bytes(3 * MB)})

    items = read_all(data, max_total_uncompressed=MB, include=lambda path: path.endswith(".csv"))

    assert items == [ZipEntry("index.csv", b"path,cat\n")]


def test_stored_members_are_read_too() -> None:
    data = make_zip({"a.jpg": b"stored bytes"}, compression=zipfile.ZIP_STORED)

    assert read_all(data) == [ZipEntry("a.jpg", b"stored bytes")]


@pytest.mark.parametrize(
    ("count", "text"),
    [(0, "0 bytes"), (512, "512 bytes"), (1536, "1.5 KB"), (2 * 1024**3, "2 GB"),
     (int(5.2 * 1024**3), "5.2 GB")],
)
def test_format_bytes(count: int, text: str) -> None:
    assert format_bytes(count) == text


def test_utf8_names_written_without_the_utf8_flag_are_decoded() -> None:
    data = bytearray(make_zip({"cafe.jpg": b"x"}))
    # Rewrite the name bytes in place as UTF-8 'café.jpg' minus one letter to keep the length,
    # with the UTF-8 flag clear, as zip tools on Linux and macOS often do.
    for header, offset in ((b"PK\x03\x04", 30), (b"PK\x01\x02", 46)):
        start = data.index(header) + offset
        data[start : start + 8] = "caé.jpg".encode()
    items = read_all(bytes(data))

    assert items == [ZipEntry("caé.jpg", b"x")]
