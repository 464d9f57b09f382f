"""Blob storage on a local directory (the default, and embedded mode's only backend)."""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from stat import S_ISLNK
from typing import BinaryIO, cast

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


def _load_syncfs() -> Callable[[int], int] | None:
    """libc's syncfs(2) (Linux): flushes one filesystem, where os.sync() flushes them all."""
    try:
        function = ctypes.CDLL(None, use_errno=True).syncfs
    except (AttributeError, OSError, TypeError):  # not Linux, or no C library to load
        return None
    function.argtypes = [ctypes.c_int]
    function.restype = ctypes.c_int
    return cast(Callable[[int], int], function)


_syncfs = _load_syncfs()
# Without syncfs or sync (Windows) there is no cheap batch flush, so every put fsyncs.
_CAN_DEFER_SYNC = _syncfs is not None or hasattr(os, "sync")


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
        self,
        key: str,
        stream: BinaryIO | bytes,
        content_type: str | None = None,
        *,
        durable: bool = True,
    ) -> ObjectInfo:
        """Write the object atomically; content_type is not kept on local disk.

        `durable=False` skips the per-file fsync: readers still only ever see a whole file, but
        it may be lost in a crash until `sync()` has run. Batches write that way, then sync once.
        """
        path = self._path(key)
        source = as_stream(stream)
        digest = hashlib.md5(usedforsecurity=False)
        size = 0
        fd, tmp_name = self._create_temp()
        try:
            with os.fdopen(fd, "wb") as tmp:
                while chunk := source.read(CHUNK_SIZE):
                    tmp.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                tmp.flush()
                # mkstemp makes 0600 files; other processes (worker, backups) read these.
                os.fchmod(tmp.fileno(), 0o644)
                if durable or not _CAN_DEFER_SYNC:
                    os.fsync(tmp.fileno())
                # Renaming keeps the inode and its mtime: no need to stat the path afterwards.
                stat = os.fstat(tmp.fileno())
            self._move_into_place(tmp_name, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
            raise
        etag = digest.hexdigest()
        self._remember_etag(path, stat, etag)
        return ObjectInfo(key=key, size=size, etag=etag, last_modified=_mtime(stat))

    def sync(self) -> None:
        """Make every file written so far survive a crash: one syncfs(2), not an fsync per file."""
        if _syncfs is None:
            os.sync()
            return
        fd = os.open(self.root, os.O_RDONLY)
        try:
            if _syncfs(fd) != 0:
                error = ctypes.get_errno()
                raise OSError(error, f"syncfs {self.root}: {os.strerror(error)}")
        finally:
            os.close(fd)

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

    def _create_temp(self) -> tuple[int, str]:
        staging = self.root / STAGING_DIR
        try:
            return tempfile.mkstemp(dir=staging, prefix="upload-")
        except FileNotFoundError:  # first write, or someone tidied the staging area away
            staging.mkdir(exist_ok=True)
            return tempfile.mkstemp(dir=staging, prefix="upload-")

    @staticmethod
    def _move_into_place(tmp_name: str, path: Path) -> None:
        # Most writes go to a directory that exists; create it only when the rename says not.
        try:
            os.replace(tmp_name, path)
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp_name, path)

    def _path(self, key: str) -> Path:
        validate_key(key)
        if key.split("/", 1)[0] == STAGING_DIR:
            raise InvalidKey(key, f"'{STAGING_DIR}' is reserved")
        path = self.root / key
        # Belt and braces: a symlink inside root must not lead outside it either. A valid key
        # without symlinks stays inside, so only resolve (a syscall per level from /) for those.
        if self._has_symlink(key) and not path.resolve().is_relative_to(self.root):
            raise InvalidKey(key, "resolves outside the storage root")
        return path

    def _has_symlink(self, key: str) -> bool:
        """Whether an existing part of `key` under the root is a symlink."""
        current = str(self.root)
        for part in key.split("/"):
            current = f"{current}/{part}"
            try:
                mode = os.lstat(current).st_mode
            except (FileNotFoundError, NotADirectoryError):  # nothing further down exists
                return False
            if S_ISLNK(mode):
                return True
        return False

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
