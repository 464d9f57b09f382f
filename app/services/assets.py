"""Assets of a project: ingest uploads (files, folders, zips), read, re-split, delete.

The filtered listing lives with the annotator (app/services/annotations.py).
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.config import settings
from app.errors import InvalidInput, NotFound
from app.imports.archives import iter_zip
from app.imports.rejections import ArchiveRejected, RejectedFile, format_bytes
from app.models import Annotation, Asset, Project, Tag, User
from app.models.assets import SPLITS
from app.services.ingest import Candidate, FileResult, Ingestor, delete_keys
from app.storage import BlobStore

ZIP_MAGIC = b"PK\x03\x04"
EMPTY_ZIP_MAGIC = b"PK\x05\x06"


@dataclass(frozen=True, slots=True)
class Upload:
    """One uploaded file: a seekable stream, or the reason it was refused while receiving it."""

    filename: str
    stream: BinaryIO | None = None
    rejection: str | None = None


@dataclass(slots=True)
class IngestReport:
    """Per-file outcomes of an upload, in upload order."""

    results: list[FileResult] = field(default_factory=list)

    def count(self, status: str) -> int:
        """How many files ended with `status` (created, duplicate, rejected)."""
        return sum(1 for result in self.results if result.status == status)


def is_zip(filename: str, head: bytes) -> bool:
    """Whether an upload is a zip archive, by name or by its first bytes."""
    return filename.lower().endswith(".zip") or head[:4] in (ZIP_MAGIC, EMPTY_ZIP_MAGIC)


def check_batch_tags(*, session: Session, project: Project, tag_ids: Sequence[int]) -> list[int]:
    """The distinct tag ids to apply to a batch, checked: in the project, active, no clashes."""
    wanted = list(dict.fromkeys(tag_ids))
    if not wanted:
        return []
    tags = {tag.id: tag for tag in session.scalars(
        select(Tag).where(Tag.project_id == project.id, Tag.id.in_(wanted))
    )}
    for tag_id in wanted:
        tag = tags.get(tag_id)
        if tag is None:
            raise InvalidInput(f"tag {tag_id} is not in project '{project.name}'")
        if tag.archived:
            raise InvalidInput(f"tag '{tag.name}' is archived; restore it to apply it")
    groups: dict[str, str] = {}
    for tag_id in wanted:
        tag = tags[tag_id]
        if tag.group is None:
            continue
        if tag.group in groups:
            raise InvalidInput(
                f"tags '{groups[tag.group]}' and '{tag.name}' are both in group '{tag.group}' "
                "and exclude each other; pick one"
            )
        groups[tag.group] = tag.name
    return wanted


def ingest_uploads(
    *,
    session: Session,
    storage: BlobStore,
    project: Project,
    uploads: Sequence[Upload],
    tag_ids: Sequence[int] = (),
    author: User | None = None,
) -> IngestReport:
    """Store the images of an upload (loose files and zips) and commit once at the end."""
    tags = check_batch_tags(session=session, project=project, tag_ids=tag_ids)
    ingestor = Ingestor(
        session=session,
        storage=storage,
        project_id=project.id,
        max_pixels=settings.max_image_pixels,
        thumb_size=settings.thumbnail_size,
        tag_ids=tags,
        author_id=author.id if author else None,
    )
    try:
        with ingestor:
            for upload in uploads:
                _ingest_upload(ingestor, upload)
            ingestor.finish()
        session.commit()
    except BaseException:
        session.rollback()
        ingestor.discard()
        raise
    return IngestReport(results=list(ingestor.results))


def _ingest_upload(ingestor: Ingestor, upload: Upload) -> None:
    if upload.rejection is not None or upload.stream is None:
        ingestor.add(RejectedFile(upload.filename, upload.rejection or "empty upload"))
        return
    stream = upload.stream
    stream.seek(0)
    head = stream.read(4)
    stream.seek(0)
    if is_zip(upload.filename, head):
        ingest_zip(ingestor, stream, archive_name=upload.filename)
        return
    data = stream.read(settings.max_upload_bytes + 1)
    if len(data) > settings.max_upload_bytes:
        ingestor.add(RejectedFile(upload.filename, too_large(settings.max_upload_bytes)))
        return
    ingestor.add(Candidate(upload.filename, data))


def ingest_zip(
    ingestor: Ingestor,
    stream: BinaryIO,
    *,
    archive_name: str,
    include: set[str] | None = None,
) -> None:
    """Ingest every image of a zip; a refused archive leaves nothing behind (one rejection).

    `include`, when given, limits the members read to these paths.
    """
    mark = ingestor.mark()
    try:
        for item in iter_zip(
            stream,
            max_total_uncompressed=settings.max_zip_uncompressed_bytes,
            max_member_bytes=settings.max_upload_bytes,
            max_members=settings.max_zip_members,
            archive_name=archive_name,
            include=None if include is None else include.__contains__,
        ):
            if isinstance(item, RejectedFile):
                ingestor.add(item, archive=archive_name)
            elif item.path.lower().endswith(".zip"):
                ingestor.add(
                    RejectedFile(item.path, "archive inside an archive: upload it on its own"),
                    archive=archive_name,
                )
            else:
                ingestor.add(Candidate(item.path, item.data, archive_name))
        ingestor.finish()
    except ArchiveRejected as exc:
        # Headers can understate sizes, so this may come after some members went in.
        ingestor.rollback_to(mark)
        ingestor.add(RejectedFile(archive_name, exc.reason))


def too_large(limit: int) -> str:
    """The rejection reason for a file over the upload limit."""
    return f"file is larger than the upload limit of {format_bytes(limit)}"


def get(*, session: Session, project: Project, asset_id: int) -> Asset:
    """One asset of the project, or NotFound."""
    asset = session.get(Asset, asset_id)
    if asset is None or asset.project_id != project.id:
        raise NotFound(f"image {asset_id} not found in project '{project.name}'")
    return asset


def get_tag_ids(*, session: Session, asset: Asset) -> list[int]:
    """Ids of the tags on an asset."""
    return list(session.scalars(
        select(Annotation.tag_id).where(Annotation.asset_id == asset.id).order_by(Annotation.id)
    ))


def update(*, session: Session, asset: Asset, split: str) -> Asset:
    """Put an asset in a split (auto, train, val, test)."""
    if split not in SPLITS:
        raise InvalidInput(f"unknown split '{split}'; expected one of {', '.join(SPLITS)}")
    asset.split = split
    session.commit()
    return asset


def delete(*, session: Session, storage: BlobStore, asset: Asset) -> None:
    """Delete an asset, its tags and its files; a synced copy is not imported again."""
    keys = [asset.storage_key] + ([asset.thumb_key] if asset.thumb_key else [])
    session.delete(asset)
    session.commit()
    delete_keys(storage, keys)


def open_file(*, storage: BlobStore, asset: Asset, thumbnail: bool = False) -> BinaryIO:
    """Open the asset's original bytes or its thumbnail for reading."""
    key = asset.thumb_key if thumbnail else asset.storage_key
    if key is None:
        raise NotFound(f"image {asset.id} has no thumbnail")
    try:
        return storage.open(key)
    except LookupError as exc:
        raise NotFound(f"the file of image {asset.id} is missing from storage") from exc


def iter_chunks(stream: BinaryIO, chunk_size: int = 256 * 1024) -> Iterator[bytes]:
    """Read a stream in chunks and close it at the end."""
    try:
        while chunk := stream.read(chunk_size):
            yield chunk
    finally:
        stream.close()


def as_upload(filename: str, data: bytes) -> Upload:
    """An in-memory upload (tests, scripts)."""
    return Upload(filename=filename, stream=io.BytesIO(data))
