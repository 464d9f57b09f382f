"""Blob storage on a local directory (the default, and embedded mode's only backend)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from app.storage.base import (
    CHUNK_SIZE,
    BlobNotFound,
    InvalidKey,
    ObjectInfo,
    as_stream,
    validate_key,
    validate_prefix,
)

# Uploads are staged here (same filesystem as the objects, so os.replace is atomic); the name is
# reserved so no key can collide with it and listings skip it.
STAGING_DIR = ".polytag-staging"
# Forget cached MD5s past this many entries; re-hashing is slow, not wrong.
ETAG_CACHE_LIMIT = 200_000


class LocalBlobStore:
    """Objects are files under `root`; writes go to a temp file and are renamed into place."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        # MD5 of a file keyed by (path, size, mtime_ns): listing should not re-hash unchanged files.
        self._etags: dict[tuple[str, int, int], str] = {}
        self._etags_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LocalBlobStore({str(self.root)!r})"

    def put(
        self, key: str, stream: BinaryIO | bytes, content_type: str | None = None
    ) -> ObjectInfo:
        """Write the object atomically; content_type is not kept on local disk."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = self.root / STAGING_DIR
        staging.mkdir(exist_ok=True)
        source = as_stream(stream)
        digest = hashlib.md5(usedforsecurity=False)
        size = 0
        fd, tmp_name = tempfile.mkstemp(dir=staging, prefix="upload-")
        try:
            with os.fdopen(fd, "wb") as tmp:
                while chunk := source.read(CHUNK_SIZE):
                    tmp.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                tmp.flush()
                os.fsync(tmp.fileno())
            # mkstemp makes 0600 files; other processes (worker, backups) read these.
            os.chmod(tmp_name, 0o644)
            os.replace(tmp_name, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
            raise
        stat = path.stat()
        etag = digest.hexdigest()
        self._remember_etag(path, stat, etag)
        return ObjectInfo(key=key, size=size, etag=etag, last_modified=_mtime(stat))

    def open(self, key: str) -> BinaryIO:
        """Open the file for reading."""
        path = self._path(key)
        try:
            return path.open("rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise BlobNotFound(key) from None

    def read_bytes(self, key: str) -> bytes:
        """Return the whole file."""
        with self.open(key) as handle:
            return handle.read()

    def exists(self, key: str) -> bool:
        """Whether the file exists."""
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        """Remove the file and any directories it leaves empty."""
        path = self._path(key)
        try:
            path.unlink()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return
        self._prune_empty_dirs(path.parent)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Yield files whose key starts with `prefix`, sorted by key like S3 and Azure do."""
        validate_prefix(prefix)
        # Only walk the deepest directory the prefix fully names.
        directory = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = self.root / directory if directory else self.root
        if not start.is_dir():
            return
        keys: list[str] = []
        for dirpath, dirnames, filenames in os.walk(start):
            if Path(dirpath) == self.root and STAGING_DIR in dirnames:
                dirnames.remove(STAGING_DIR)
            relative_dir = Path(dirpath).relative_to(self.root).as_posix()
            for name in filenames:
                key = name if relative_dir == "." else f"{relative_dir}/{name}"
                if key.startswith(prefix):
                    keys.append(key)
        for key in sorted(keys):
            info = self._info(key)
            if info is not None:
                yield info

    def url(self, key: str, expires: int = 3600) -> str | None:
        """Local files have no presigned URL; the api serves them itself."""
        validate_key(key)
        return None

    def delete_prefix(self, prefix: str) -> None:
        """Remove every file whose key starts with `prefix`."""
        validate_prefix(prefix, allow_empty=False)
        for info in list(self.list(prefix)):
            self.delete(info.key)

    def _path(self, key: str) -> Path:
        validate_key(key)
        if key.split("/", 1)[0] == STAGING_DIR:
            raise InvalidKey(key, f"'{STAGING_DIR}' is reserved")
        path = self.root / key
        # Belt and braces: a symlink inside root must not lead outside it either.
        if not path.resolve().is_relative_to(self.root):
            raise InvalidKey(key, "resolves outside the storage root")
        return path

    def _info(self, key: str) -> ObjectInfo | None:
        path = self.root / key
        try:
            stat = path.stat()
        except FileNotFoundError:  # deleted while we were listing
            return None
        cache_key = (str(path), stat.st_size, stat.st_mtime_ns)
        with self._etags_lock:
            etag = self._etags.get(cache_key)
        if etag is None:
            try:
                etag = _md5_file(path)
            except FileNotFoundError:
                return None
            self._remember_etag(path, stat, etag)
        return ObjectInfo(key=key, size=stat.st_size, etag=etag, last_modified=_mtime(stat))

    def _remember_etag(self, path: Path, stat: os.stat_result, etag: str) -> None:
        with self._etags_lock:
            if len(self._etags) >= ETAG_CACHE_LIMIT:
                self._etags.clear()
            self._etags[(str(path), stat.st_size, stat.st_mtime_ns)] = etag

    def _prune_empty_dirs(self, directory: Path) -> None:
        while directory != self.root and directory.is_relative_to(self.root):
            try:
                directory.rmdir()
            except OSError:  # not empty, or already gone
                return
            directory = directory.parent


def _md5_file(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_SIZE):
            digest.update(chunk)
    return digest.hexdigest()


def _mtime(stat: os.stat_result) -> datetime:
    return datetime.fromtimestamp(stat.st_mtime, tz=UTC)
