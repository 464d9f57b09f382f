"""The image ingest pipeline shared by uploads, label imports and bucket sync.

`Ingestor` takes candidate files one at a time and, in chunks: hashes them, asks the database
which ones the project already has (duplicates are never decoded or stored again), decodes and
thumbnails the new ones on a small thread pool (Pillow and the storage writes release the GIL),
writes original and thumbnail to blob storage, and inserts the asset rows in one batched
`INSERT ... ON CONFLICT DO NOTHING`. A file that is rejected writes nothing anywhere.

Stores that can flush many files at once (local disk: one syncfs instead of an fsync per file)
are written without per-file durability and flushed once in `finish()`, before the caller's
commit makes rows point at the files.

The caller owns the transaction: it commits once at the end, or calls `discard()` to delete what
was written to storage after rolling back.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Literal, Protocol, runtime_checkable

from sqlalchemy import delete, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.imports.images import ImageInfo, process_image
from app.imports.rejections import RejectedFile
from app.models import Annotation, Asset, utcnow
from app.storage import BlobStore, ObjectInfo

# Image formats as Pillow names them → file extension of the stored original.
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "BMP": "bmp",
              "TIFF": "tiff"}  # fmt: skip
CHUNK_FILES = 32
CHUNK_BYTES = 64 * 1024 * 1024
# Decoding is CPU-bound but releases the GIL; writes to S3 or Azure mostly wait on the network,
# so more threads than cores keep the cores busy. (Local disk: 2 to 6 threads on 2 cores made no
# measurable difference to benchmarks/ingest.py.)
THREADS = min(8, 2 * (os.cpu_count() or 2) + 2)
# Chunks being decoded while the next one is read from the archive and hashed.
CHUNKS_AHEAD = 2

Status = Literal["created", "duplicate", "rejected"]


@runtime_checkable
class BatchSyncedStore(Protocol):
    """A store whose writes can skip per-file durability and be flushed together (local disk)."""

    def put(
        self,
        key: str,
        stream: BinaryIO | bytes,
        content_type: str | None = None,
        *,
        durable: bool = True,
    ) -> ObjectInfo:
        """Store the object; with `durable=False` it may not survive a crash before `sync()`."""
        ...

    def sync(self) -> None:
        """Make everything written so far durable."""
        ...


@dataclass(frozen=True, slots=True)
class Candidate:
    """A file to ingest: the name to record (a relative path for folders and archives)."""

    filename: str
    data: bytes
    archive: str | None = None


@dataclass(slots=True)
class FileResult:
    """What happened to one file: created, duplicate (of `asset_id`) or rejected (`reason`)."""

    filename: str
    status: Status
    asset_id: int | None = None
    reason: str | None = None
    archive: str | None = None
    sha256: str | None = None


def asset_key(project_id: int, sha256: str, image_format: str) -> str:
    """Storage key of an asset's original bytes."""
    return f"projects/{project_id}/assets/{sha256}.{EXTENSIONS.get(image_format, 'bin')}"


def thumb_key(project_id: int, sha256: str) -> str:
    """Storage key of an asset's JPEG thumbnail."""
    return f"projects/{project_id}/thumbs/{sha256}.jpg"


@dataclass(slots=True)
class _Prepared:
    info: ImageInfo
    key: str
    thumb: str


@dataclass(slots=True)
class _Pending:
    candidate: Candidate
    sha256: str = ""
    future: Future[_Prepared | RejectedFile] | None = None
    # Set when the file repeats one stored before this run.
    existing_id: int | None = None
    # Set for a file refused before it reached the pipeline (archive reader, size limit).
    rejected: RejectedFile | None = None


@dataclass(frozen=True, slots=True)
class Mark:
    """A point in an ingest run to go back to (see `Ingestor.rollback_to`)."""

    results: int
    created: int
    written: int


@dataclass
class Ingestor:
    """Batched, threaded ingest into one project; use as a context manager, then `finish()`."""

    session: Session
    storage: BlobStore
    project_id: int
    max_pixels: int
    thumb_size: int = 256
    tag_ids: Sequence[int] = ()
    author_id: int | None = None
    source_id: int | None = None
    results: list[FileResult] = field(default_factory=list)
    created_ids: list[int] = field(default_factory=list)
    written_keys: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="ingest")
        self._buffer: list[_Pending] = []
        self._buffer_bytes = 0
        self._inflight: list[list[_Pending]] = []
        # sha256 → asset id or RejectedFile, for images processed during this run.
        self._outcomes: dict[str, int | RejectedFile] = {}
        self._queued: set[str] = set()
        self._batch_store = self.storage if isinstance(self.storage, BatchSyncedStore) else None
        # Whether files were written since the last sync (set from the pool's threads).
        self._unsynced = False

    def __enter__(self) -> Ingestor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def add(self, item: Candidate | RejectedFile, *, archive: str | None = None) -> None:
        """Queue a file, or record one already refused (e.g. by the archive reader)."""
        if isinstance(item, RejectedFile):
            self._buffer.append(_Pending(Candidate(item.filename, b"", archive), rejected=item))
            return
        self._buffer.append(_Pending(item))
        self._buffer_bytes += len(item.data)
        if len(self._buffer) >= CHUNK_FILES or self._buffer_bytes >= CHUNK_BYTES:
            self._submit_buffer()
            while len(self._inflight) > CHUNKS_AHEAD:
                self._drain_oldest()

    def finish(self) -> list[FileResult]:
        """Process everything queued and make the files durable; rows are flushed, not committed."""
        self._submit_buffer()
        while self._inflight:
            self._drain_oldest()
        if self._unsynced and self._batch_store is not None:
            self._unsynced = False
            self._batch_store.sync()
        return self.results

    def mark(self) -> Mark:
        """A point to go back to with `rollback_to` (e.g. the start of an archive)."""
        self.finish()
        return Mark(len(self.results), len(self.created_ids), len(self.written_keys))

    def rollback_to(self, mark: Mark) -> None:
        """Undo everything ingested since `mark`: rows deleted, their new blobs removed."""
        self.finish()
        ids = self.created_ids[mark.created :]
        if ids:
            self.session.execute(delete(Annotation).where(Annotation.asset_id.in_(ids)))
            self.session.execute(delete(Asset).where(Asset.id.in_(ids)))
        self._delete_unreferenced(self.written_keys[mark.written :])
        gone = set(ids)
        self._outcomes = {
            sha: outcome for sha, outcome in self._outcomes.items()
            if not (isinstance(outcome, int) and outcome in gone)
        }
        del self.results[mark.results :]
        del self.created_ids[mark.created :]
        del self.written_keys[mark.written :]

    def discard(self) -> None:
        """After the caller rolled the transaction back: remove the blobs this run wrote."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._delete_unreferenced(self.written_keys)

    def _delete_unreferenced(self, keys: list[str]) -> None:
        # Another upload may have committed the same image meanwhile; then the blob is shared.
        shas = {_key_sha(key) for key in keys}
        kept = set(self.session.scalars(
            select(Asset.sha256).where(
                Asset.project_id == self.project_id, Asset.sha256.in_(shas)
            )
        )) if shas else set()
        delete_keys(self.storage, [key for key in keys if _key_sha(key) not in kept])

    # -- pipeline -----------------------------------------------------------------------------

    def _submit_buffer(self) -> None:
        if not self._buffer:
            return
        chunk, self._buffer, self._buffer_bytes = self._buffer, [], 0
        for pending in chunk:
            if pending.rejected is None:
                pending.sha256 = hashlib.sha256(pending.candidate.data).hexdigest()
        fresh = {p.sha256 for p in chunk if p.sha256 and not self._seen(p.sha256)}
        stored = self._stored_ids(fresh)
        for pending in chunk:
            sha = pending.sha256
            if not sha or self._seen(sha):
                continue
            if sha in stored:
                pending.existing_id = stored[sha]
                continue
            self._queued.add(sha)
            pending.future = self._pool.submit(self._prepare, pending.candidate, sha)
        self._inflight.append(chunk)

    def _seen(self, sha: str) -> bool:
        """Whether this run already has (or is processing) an image with these bytes."""
        return sha in self._queued or sha in self._outcomes

    def _stored_ids(self, shas: set[str]) -> dict[str, int]:
        if not shas:
            return {}
        rows = self.session.execute(
            select(Asset.sha256, Asset.id).where(
                Asset.project_id == self.project_id, Asset.sha256.in_(shas)
            )
        )
        return {sha: asset_id for sha, asset_id in rows}

    def _prepare(self, candidate: Candidate, sha256: str) -> _Prepared | RejectedFile:
        """Runs on the pool: verify, thumbnail and store one new image."""
        try:
            info, thumbnail = process_image(
                candidate.data,
                filename=candidate.filename,
                max_pixels=self.max_pixels,
                thumb_size=self.thumb_size,
                sha256=sha256,
            )
        except RejectedFile as rejected:
            return rejected
        key = asset_key(self.project_id, info.sha256, info.format)
        thumb = thumb_key(self.project_id, info.sha256)
        # Recorded before writing, so that a failed write is cleaned up too.
        self.written_keys.extend((key, thumb))
        self._put(key, candidate.data, info.mime)
        self._put(thumb, thumbnail, "image/jpeg")
        return _Prepared(info, key, thumb)

    def _put(self, key: str, data: bytes, content_type: str) -> None:
        if self._batch_store is None:
            self.storage.put(key, data, content_type)
            return
        self._unsynced = True
        self._batch_store.put(key, data, content_type, durable=False)

    def _drain_oldest(self) -> None:
        chunk = self._inflight.pop(0)
        prepared: dict[str, tuple[_Prepared, str]] = {}
        for pending in chunk:
            if pending.future is None:
                continue
            outcome = pending.future.result()
            self._queued.discard(pending.sha256)
            if isinstance(outcome, RejectedFile):
                self._outcomes[pending.sha256] = outcome
            else:
                prepared[pending.sha256] = (outcome, pending.candidate.filename)
        inserted = self._insert(prepared)
        for pending in chunk:
            self.results.append(self._result(pending, inserted))

    def _result(self, pending: _Pending, inserted: dict[str, int]) -> FileResult:
        candidate, sha = pending.candidate, pending.sha256
        if pending.rejected is not None:
            return FileResult(pending.rejected.filename, "rejected",
                              reason=pending.rejected.reason, archive=candidate.archive)
        if pending.existing_id is not None:
            return FileResult(candidate.filename, "duplicate", pending.existing_id,
                              archive=candidate.archive, sha256=sha)
        outcome = self._outcomes[sha]
        if isinstance(outcome, RejectedFile):
            return FileResult(candidate.filename, "rejected", reason=outcome.reason,
                              archive=candidate.archive)
        created = pending.future is not None and sha in inserted
        return FileResult(candidate.filename, "created" if created else "duplicate", outcome,
                          archive=candidate.archive, sha256=sha)

    def _insert(self, prepared: dict[str, tuple[_Prepared, str]]) -> dict[str, int]:
        """Insert rows for the prepared images; returns sha256 → id of the rows inserted."""
        if not prepared:
            return {}
        now = utcnow()
        rows = [
            {
                "project_id": self.project_id,
                "storage_key": item.key,
                "thumb_key": item.thumb,
                "original_filename": filename[:512],
                "sha256": sha,
                "width": item.info.width,
                "height": item.info.height,
                "mime": item.info.mime,
                "bytes": item.info.bytes,
                "source_id": self.source_id,
                "split": "auto",
                "review_state": "labeled" if self.tag_ids else "unlabeled",
                "created_at": now,
                "updated_at": now,
            }
            for sha, (item, filename) in prepared.items()
        ]
        inserted = insert_assets(self.session, rows)
        self.created_ids.extend(inserted.values())
        # Rows skipped by ON CONFLICT were committed by a concurrent upload: duplicates.
        self._outcomes.update(inserted)
        self._outcomes.update(self._stored_ids(set(prepared) - set(inserted)))
        if self.tag_ids and inserted:
            self.session.execute(
                insert(Annotation),
                [
                    {"asset_id": asset_id, "tag_id": tag_id, "source": "human",
                     "author_id": self.author_id, "created_at": now}
                    for asset_id in inserted.values()
                    for tag_id in self.tag_ids
                ],
            )
        return inserted


def insert_assets(session: Session, rows: list[dict[str, Any]]) -> dict[str, int]:
    """Insert asset rows, skipping any whose sha256 the project already has; sha256 → new id."""
    if not rows:
        return {}
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        statement: Any = postgresql.insert(Asset).on_conflict_do_nothing(
            index_elements=["project_id", "sha256"]
        )
    else:
        statement = sqlite.insert(Asset).on_conflict_do_nothing(
            index_elements=["project_id", "sha256"]
        )
    statement = statement.returning(Asset.sha256, Asset.id)
    result = session.execute(statement, rows)
    return {sha: asset_id for sha, asset_id in result}


def delete_keys(storage: BlobStore, keys: Iterable[str]) -> None:
    """Delete blobs, best effort: an orphan blob costs space, never correctness."""
    for key in dict.fromkeys(keys):
        try:
            storage.delete(key)
        except Exception:
            continue


def _key_sha(key: str) -> str:
    return key.rsplit("/", 1)[-1].split(".", 1)[0]
