"""Staged label files: kept in blob storage between preview and confirm, read per format."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import BinaryIO

from app.config import settings
from app.errors import InvalidInput, NotFound
from app.imports.archives import is_junk, iter_zip, normalise_member_path
from app.imports.coco import CocoCategory, coco_categories, read_coco
from app.imports.csv_labels import read_csv, read_index_zip_csv
from app.imports.label_studio import read_label_studio
from app.imports.rejections import ArchiveRejected, RejectedFile
from app.imports.tables import LabelFileError, LabelTable
from app.imports.voc import is_voc_label_path, read_voc
from app.models import Project
from app.storage import BlobStore

FORMATS = ("csv", "index_zip", "coco", "voc", "label_studio")
ARCHIVE_FORMATS = frozenset({"index_zip", "voc"})
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")
# Staged files nobody confirmed are removed after this long.
STALE_AFTER = timedelta(hours=24)
_IMPORT_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True, slots=True)
class StagedImport:
    """An uploaded label file waiting for confirmation."""

    import_id: str
    format: str
    filename: str


@dataclass(slots=True)
class ArchiveLayout:
    """The files of an index.csv zip; paths are relative to the folder holding index.csv."""

    folder: str
    paths: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)

    def member(self, path: str) -> str:
        """The member path in the archive of a path relative to index.csv."""
        return f"{self.folder}{path}"

    def relative(self, member: str) -> str:
        """The path relative to index.csv of a member path."""
        return member.removeprefix(self.folder)


@dataclass(slots=True)
class TableSource:
    """A read label file: its table, the names to match rows against, COCO's categories."""

    table: LabelTable
    archive: ArchiveLayout | None = None
    categories: list[CocoCategory] = field(default_factory=list)


def _prefix(project: Project) -> str:
    return f"projects/{project.id}/label-imports/"


def stage(
    *, storage: BlobStore, project: Project, format: str, filename: str, stream: BinaryIO
) -> StagedImport:
    """Keep an uploaded label file until it is confirmed or discarded."""
    if format not in FORMATS:
        raise InvalidInput(f"unknown label format '{format}'; expected one of {', '.join(FORMATS)}")
    _remove_stale(storage, project)
    staged = StagedImport(uuid.uuid4().hex, format, filename[:300] or "labels")
    base = f"{_prefix(project)}{staged.import_id}"
    storage.put(f"{base}/data", stream, "application/octet-stream")
    meta = {"format": staged.format, "filename": staged.filename,
            "created_at": datetime.now(UTC).isoformat()}
    storage.put(f"{base}/meta.json", json.dumps(meta).encode(), "application/json")
    return staged


def load(*, storage: BlobStore, project: Project, import_id: str) -> StagedImport:
    """The staged import with this id, or NotFound."""
    if not _IMPORT_ID.match(import_id):
        raise NotFound(f"label import '{import_id[:40]}' not found")
    try:
        meta = json.loads(storage.read_bytes(f"{_prefix(project)}{import_id}/meta.json"))
    except LookupError:
        raise NotFound(
            f"label import '{import_id}' not found: it was applied, discarded or expired; "
            "upload the file again"
        ) from None
    return StagedImport(import_id, str(meta["format"]), str(meta["filename"]))


def discard(*, storage: BlobStore, project: Project, import_id: str) -> None:
    """Remove a staged import."""
    storage.delete_prefix(f"{_prefix(project)}{import_id}/")


@contextmanager
def open_data(
    *, storage: BlobStore, project: Project, staged: StagedImport
) -> Iterator[BinaryIO]:
    """The staged file as a seekable stream (zip readers need to seek)."""
    stream = storage.open(f"{_prefix(project)}{staged.import_id}/data")
    try:
        if stream.seekable():
            yield stream
            return
        with tempfile.SpooledTemporaryFile(max_size=16 * 1024 * 1024) as copy:
            shutil.copyfileobj(stream, copy, 1024 * 1024)
            copy.seek(0)
            yield copy  # type: ignore[misc]
    finally:
        stream.close()


def read_table(
    staged: StagedImport, data: BinaryIO, categories: list[str] | None
) -> TableSource:
    """Read the staged file in its format; raises LabelFileError when it cannot be read."""
    data.seek(0)
    if staged.format == "index_zip":
        return _read_index_zip(data)
    if staged.format == "voc":
        return TableSource(read_voc(_voc_files(data)))
    content = data.read(settings.max_upload_bytes + 1)
    if len(content) > settings.max_upload_bytes:
        raise LabelFileError("the file is larger than the upload limit")
    if staged.format == "csv":
        return TableSource(read_csv(content))
    if staged.format == "coco":
        return TableSource(read_coco(content, categories), categories=coco_categories(content))
    return TableSource(read_label_studio(content))


def _open_zip(data: BinaryIO) -> zipfile.ZipFile:
    try:
        archive = zipfile.ZipFile(data)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise LabelFileError("not a zip archive") from exc
    if len(archive.infolist()) > settings.max_zip_members:
        raise LabelFileError(f"the archive has more than {settings.max_zip_members:,} entries")
    return archive


def _read_zip_members(data: BinaryIO, wanted: set[str]) -> dict[str, bytes]:
    data.seek(0)
    found: dict[str, bytes] = {}
    try:
        for item in iter_zip(
            data,
            max_total_uncompressed=settings.max_zip_uncompressed_bytes,
            max_member_bytes=settings.max_upload_bytes,
            max_members=settings.max_zip_members,
            archive_name="the archive",
            include=wanted.__contains__,
        ):
            if isinstance(item, RejectedFile):
                raise LabelFileError(f"{item.filename}: {item.reason}")
            found[item.path] = item.data
    except ArchiveRejected as exc:
        raise LabelFileError(exc.reason) from exc
    return found


def _safe_paths(archive: zipfile.ZipFile) -> list[str]:
    paths = []
    for member in archive.infolist():
        path = normalise_member_path(member.filename)
        if path and not member.is_dir() and not path.endswith("/") and not is_junk(path):
            paths.append(path)
    return paths


def _read_index_zip(data: BinaryIO) -> TableSource:
    with _open_zip(data) as archive:
        paths = _safe_paths(archive)
    indexes = sorted((p for p in paths if p.rsplit("/", 1)[-1].lower() == "index.csv"),
                     key=lambda p: (p.count("/"), p))
    if not indexes:
        raise LabelFileError("the archive has no index.csv")
    index = indexes[0]
    folder = index[: len(index) - len("index.csv")]
    table = read_index_zip_csv(_read_zip_members(data, {index})[index])
    layout = ArchiveLayout(folder)
    for path in paths:
        if path == index or not path.startswith(folder):
            continue
        layout.paths.append(layout.relative(path))
        if path.lower().endswith(IMAGE_SUFFIXES):
            layout.images.append(layout.relative(path))
    return TableSource(table, archive=layout)


def _voc_files(data: BinaryIO) -> dict[str, bytes]:
    with _open_zip(data) as archive:
        wanted = {path for path in _safe_paths(archive) if is_voc_label_path(path)}
    if not wanted:  # loose XML files zipped without the VOC folders
        with _open_zip(data) as archive:
            wanted = {p for p in _safe_paths(archive) if p.lower().endswith(".xml")}
    return _read_zip_members(data, wanted)


def _remove_stale(storage: BlobStore, project: Project) -> None:
    cutoff = datetime.now(UTC) - STALE_AFTER
    stale = {info.key.rsplit("/", 1)[0] for info in storage.list(_prefix(project))
             if info.key.endswith("/meta.json") and info.last_modified < cutoff}
    for base in stale:
        storage.delete_prefix(f"{base}/")
