"""Safe iteration over uploaded zip archives.

Nothing is written to disk: members are read into memory one at a time, within limits. The
declared sizes are checked before anything is extracted, and the bytes actually produced are
counted too, because a crafted archive can declare small sizes and inflate to far more.
"""

from __future__ import annotations

import os
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import PurePath
from typing import BinaryIO

from app.imports.rejections import ArchiveRejected, RejectedFile, format_bytes

_CHUNK = 1024 * 1024
_UTF8_FLAG = 0x800
_DRIVE = re.compile(r"^[A-Za-z]:")
# Files that operating systems leave in folders; nobody means to upload them.
_JUNK_NAMES = {".DS_Store", "Thumbs.db", "desktop.ini"}
_JUNK_DIRS = {"__MACOSX"}


@dataclass(frozen=True, slots=True)
class ZipEntry:
    """One regular file from an archive: its normalised relative path and its bytes."""

    path: str
    data: bytes


def iter_zip(
    file: BinaryIO | str | os.PathLike[str],
    *,
    max_total_uncompressed: int,
    max_member_bytes: int,
    max_members: int,
    archive_name: str | None = None,
    include: Callable[[str], bool] | None = None,
) -> Iterator[ZipEntry | RejectedFile]:
    """Yield each file of a zip archive, or a RejectedFile for a member that cannot be used.

    Raises ArchiveRejected (on the first `next()`, before any member is read) when the file is
    not a readable zip or is over the member or total-size limits, and later if the bytes
    actually inflated exceed the total limit despite the headers. `include`, given a safe
    path, picks the members to read; the others are skipped and not counted in the total.
    """
    name = archive_name or _archive_name(file)
    try:
        archive = zipfile.ZipFile(file)
    except zipfile.BadZipFile as exc:
        raise ArchiveRejected(name, _bad_zip_reason(exc)) from exc
    except (OSError, EOFError, ValueError, zipfile.LargeZipFile) as exc:
        raise ArchiveRejected(name, f"corrupt zip archive: {exc}") from exc
    with archive:
        members = archive.infolist()
        if len(members) > max_members:
            raise ArchiveRejected(
                name, f"it has {len(members):,} entries, over the limit of {max_members:,}"
            )
        wanted = _select_members(members, include)
        _check_total(name, [member for member, _path in wanted], max_total_uncompressed)
        seen: set[str] = set()
        inflated = 0
        for member, path in wanted:
            if path is None:
                yield RejectedFile(_decoded_name(member), "path escapes the archive")
                continue
            if path in seen:
                yield RejectedFile(path, "duplicate path in the archive")
                continue
            seen.add(path)
            outcome = _read_member(archive, member, path, max_member_bytes)
            if isinstance(outcome, ZipEntry):
                inflated += len(outcome.data)
                if inflated > max_total_uncompressed:
                    raise ArchiveRejected(
                        name,
                        "inflates to more than the limit of "
                        f"{format_bytes(max_total_uncompressed)} (its headers understate sizes)",
                    )
            yield outcome


def normalise_member_path(raw: str) -> str | None:
    """Return a safe '/'-separated relative path for an archive member, or None if it escapes.

    Backslashes count as separators (Windows tools write them); '.' and empty parts are dropped
    and '..' is resolved, so 'a/../b.jpg' is 'b.jpg' while '../b.jpg', '/b.jpg', 'C:/b.jpg'
    and '\\\\server\\b.jpg' escape. A trailing '/' (a directory) is kept.
    """
    text = raw.replace("\\", "/")
    if text.startswith("/") or _DRIVE.match(text) or "\x00" in text:
        return None
    parts: list[str] = []
    for part in text.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                return None
            parts.pop()
            continue
        parts.append(part)
    path = "/".join(parts)
    return path + "/" if path and text.endswith("/") else path


def is_junk(path: str) -> bool:
    """True for macOS resource forks and folder metadata files that should be skipped quietly."""
    parts = path.split("/")
    basename = parts[-1]
    return (
        any(part in _JUNK_DIRS for part in parts[:-1])
        or basename in _JUNK_NAMES
        or basename.startswith("._")
    )


def _select_members(
    members: list[zipfile.ZipInfo], include: Callable[[str], bool] | None
) -> list[tuple[zipfile.ZipInfo, str | None]]:
    """Regular, non-junk members to read, with their safe path (None: the path escapes)."""
    selected: list[tuple[zipfile.ZipInfo, str | None]] = []
    for member in members:
        path = normalise_member_path(_decoded_name(member))
        if path is None:
            if not member.is_dir():
                selected.append((member, None))
        elif (
            path
            and not path.endswith("/")
            and not member.is_dir()
            and not is_junk(path)
            and (include is None or include(path))
        ):
            selected.append((member, path))
    return selected


def _decoded_name(member: zipfile.ZipInfo) -> str:
    """The member's name, re-read as UTF-8 where a tool wrote UTF-8 without saying so.

    Without the UTF-8 flag zipfile decodes names as cp437, which turns 'café.jpg' from many
    Linux and macOS tools into 'caf├⌐.jpg'; names that are valid UTF-8 are taken as such.
    """
    if member.flag_bits & _UTF8_FLAG:
        return member.filename
    try:
        return member.filename.encode("cp437").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return member.filename


def _check_total(name: str, members: list[zipfile.ZipInfo], max_total: int) -> None:
    declared = sum(member.file_size for member in members)
    if declared > max_total:
        raise ArchiveRejected(
            name,
            f"uncompressed size {format_bytes(declared)} is over the limit of "
            f"{format_bytes(max_total)}",
        )


def _read_member(
    archive: zipfile.ZipFile, member: zipfile.ZipInfo, path: str, max_bytes: int
) -> ZipEntry | RejectedFile:
    if member.flag_bits & 0x1:
        return RejectedFile(path, "file is encrypted (password-protected archive)")
    if member.file_size > max_bytes:
        return RejectedFile(path, _too_big(member.file_size, max_bytes))
    chunks: list[bytes] = []
    size = 0
    try:
        with archive.open(member) as stream:
            while chunk := stream.read(_CHUNK):
                size += len(chunk)
                if size > max_bytes:  # the header understated the size
                    return RejectedFile(
                        path, f"file inflates to more than the limit of {format_bytes(max_bytes)}"
                    )
                chunks.append(chunk)
    except NotImplementedError as exc:  # e.g. deflate64, which zipfile cannot inflate
        return RejectedFile(path, f"unsupported compression in the archive: {exc}")
    except Exception as exc:  # BadZipFile (bad CRC), zlib.error, EOFError... on damaged data
        return RejectedFile(path, f"corrupt archive entry: {exc}")
    return ZipEntry(path=path, data=b"".join(chunks))


def _too_big(size: int, limit: int) -> str:
    return f"file is {format_bytes(size)} uncompressed, over the limit of {format_bytes(limit)}"


def _bad_zip_reason(exc: zipfile.BadZipFile) -> str:
    if "not a zip file" in str(exc).lower():
        return "not a zip archive"
    return f"corrupt zip archive: {exc}"


def _archive_name(file: BinaryIO | str | os.PathLike[str]) -> str:
    if isinstance(file, str | os.PathLike):
        return PurePath(os.fspath(file)).name
    name = getattr(file, "name", None)
    return PurePath(name).name if isinstance(name, str) else "archive"
