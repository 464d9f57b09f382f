"""The `BlobStore` protocol every storage backend implements, its errors and key rules.

Keys are `/`-separated relative paths such as `projects/3/assets/<sha256>.jpg`. They are checked
here, once, so that no backend can be talked into writing outside its root or prefix.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO, Protocol, runtime_checkable

# Copy buffers; big enough to keep syscalls and HTTP chunks few, small enough to stay in cache.
CHUNK_SIZE = 1024 * 1024


class StorageError(Exception):
    """Base class of the errors raised by blob stores."""


class BlobNotFound(StorageError, LookupError):
    """The key does not name a stored object."""

    def __init__(self, key: str) -> None:
        super().__init__(f"object '{key}' not found")
        self.key = key


class InvalidKey(StorageError, ValueError):
    """The key is not a safe relative `/`-separated path."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"invalid storage key {key!r}: {reason}")
        self.key = key
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What a backend knows about one stored object; `last_modified` is aware UTC."""

    key: str
    size: int
    etag: str
    last_modified: datetime


@runtime_checkable
class BlobStore(Protocol):
    """Object storage for Polytag's own files (images, thumbnails, checkpoints, exports)."""

    def put(
        self, key: str, stream: BinaryIO | bytes, content_type: str | None = None
    ) -> ObjectInfo:
        """Store `stream` under `key`, replacing any previous object, and describe the result."""
        ...

    def open(self, key: str) -> BinaryIO:
        """Open the object for reading; raise `BlobNotFound` when it does not exist."""
        ...

    def read_bytes(self, key: str) -> bytes:
        """Return the whole object; raise `BlobNotFound` when it does not exist."""
        ...

    def exists(self, key: str) -> bool:
        """Whether an object is stored under `key`."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object; removing a missing object is not an error."""
        ...

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Yield the objects whose key starts with `prefix`, in key order."""
        ...

    def url(self, key: str, expires: int = 3600) -> str | None:
        """A presigned GET URL valid for `expires` seconds, or None if the backend has none."""
        ...

    def delete_prefix(self, prefix: str) -> None:
        """Remove every object whose key starts with the (non-empty) `prefix`."""
        ...


def validate_key(key: str) -> str:
    """Return `key` unchanged if it is a safe relative object key, else raise `InvalidKey`."""
    if not isinstance(key, str) or not key:
        raise InvalidKey(str(key), "empty key")
    _check_characters(key)
    if key.endswith("/"):
        raise InvalidKey(key, "a key cannot end with '/'")
    _check_segments(key, key.split("/"))
    return key


def validate_prefix(prefix: str, *, allow_empty: bool = True) -> str:
    """Return `prefix` if it is a safe key prefix (may end with `/`), else raise `InvalidKey`."""
    if not isinstance(prefix, str):
        raise InvalidKey(str(prefix), "a prefix must be a string")
    if not prefix:
        if allow_empty:
            return prefix
        raise InvalidKey(prefix, "empty prefix")
    _check_characters(prefix)
    segments = prefix.split("/")
    if segments[-1] == "":
        segments = segments[:-1]
    # A trailing partial segment such as "assets/ab" is fine; ".." anywhere is not.
    _check_segments(prefix, segments)
    return prefix


def _check_characters(key: str) -> None:
    if "\x00" in key:
        raise InvalidKey(key, "NUL character")
    if "\\" in key:
        raise InvalidKey(key, "backslashes are not allowed, use '/'")
    if key.startswith("/"):
        raise InvalidKey(key, "absolute keys are not allowed")
    if any(ord(ch) < 32 for ch in key):
        raise InvalidKey(key, "control characters are not allowed")


def _check_segments(key: str, segments: Iterable[str]) -> None:
    for segment in segments:
        if segment in ("", ".", ".."):
            raise InvalidKey(key, "empty, '.' and '..' path segments are not allowed")


def join_prefix(base: str, key: str) -> str:
    """Join a backend's configured prefix (e.g. `polytag`) and a key with exactly one `/`."""
    base = base.strip("/")
    return f"{base}/{key}" if base else key


def as_stream(data: BinaryIO | bytes) -> BinaryIO:
    """Wrap bytes in a stream so backends have one code path for uploads."""
    if isinstance(data, bytes | bytearray | memoryview):
        return io.BytesIO(bytes(data))
    return data


def strip_etag(etag: str | None) -> str:
    """S3 and Azure quote their ETags; keep the bare value."""
    return (etag or "").strip('"')
