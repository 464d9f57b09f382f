"""Read-only clients for the external buckets, containers and folders a project syncs from.

Keys passed to and returned by a client are relative to the source's configured prefix, which is
treated as a folder (`photos` and `photos/` both mean `photos/...`). Every failure surfaces as a
`TransientSourceError` (retry it, see `retry`) or a `PermanentSourceError` (report it). Listings
are lazy, so wrap the whole iteration when retrying: `retry(lambda: list(client.list()))`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from app.storage.base import InvalidKey, join_prefix, strip_etag, validate_key
from app.storage.source_errors import (
    PermanentSourceError,
    SourceError,
    TransientSourceError,
    classify_azure_error,
    classify_s3_error,
    retry,
)

if TYPE_CHECKING:
    from azure.storage.blob import ContainerClient
    from mypy_boto3_s3.client import S3Client

__all__ = [
    "SOURCE_KINDS",
    "AzureSource",
    "FolderSource",
    "PermanentSourceError",
    "S3Source",
    "SourceClient",
    "SourceError",
    "SourceObject",
    "TransientSourceError",
    "open_source",
    "retry",
]

SOURCE_KINDS = ("s3", "azure", "folder")


@dataclass(frozen=True, slots=True)
class SourceObject:
    """One object in a source; `etag` changes whenever the content does."""

    key: str
    size: int
    etag: str
    last_modified: datetime


@runtime_checkable
class SourceClient(Protocol):
    """What a sync needs from a source: list what is there, read one object."""

    def list(self, prefix: str = "") -> Iterator[SourceObject]:
        """Yield the objects under `prefix` (relative to the source's prefix)."""
        ...

    def read(self, key: str) -> bytes:
        """Return the object's bytes."""
        ...


def _folder_prefix(prefix: str) -> str:
    prefix = prefix.strip("/")
    return f"{prefix}/" if prefix else ""


class S3Source:
    """A bucket (any S3-compatible endpoint). Without keys, requests are anonymous: a project's
    source must never borrow the server's own IAM role."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        region: str | None = None,
        endpoint_url: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        *,
        client: S3Client | None = None,
    ) -> None:
        if not bucket:
            raise PermanentSourceError("an S3 source needs a bucket name")
        self.bucket = bucket
        self.prefix = _folder_prefix(prefix)
        if client is None:
            from app.storage.s3 import make_s3_client

            try:
                # One attempt per call: `retry` owns the backoff, so waits do not multiply.
                client = make_s3_client(
                    region=region,
                    endpoint_url=endpoint_url,
                    access_key_id=access_key_id,
                    secret_access_key=secret_access_key,
                    anonymous=not (access_key_id and secret_access_key),
                    max_attempts=1,
                    connect_timeout=5.0,
                    read_timeout=30.0,
                )
            except Exception as exc:  # e.g. ValueError("Invalid endpoint: ...")
                raise classify_s3_error(exc, bucket=bucket) from exc
        self.client = client

    def __repr__(self) -> str:
        return f"S3Source(bucket={self.bucket!r}, prefix={self.prefix!r})"

    def list(self, prefix: str = "") -> Iterator[SourceObject]:
        """Page through the bucket; folder placeholder objects (`dir/`) are skipped."""
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
                for item in page.get("Contents", []):
                    if item["Key"].endswith("/"):
                        continue
                    yield SourceObject(
                        key=item["Key"][len(self.prefix) :],
                        size=int(item["Size"]),
                        etag=strip_etag(item.get("ETag")),
                        last_modified=item["LastModified"],
                    )
        except Exception as exc:
            raise classify_s3_error(exc, bucket=self.bucket) from exc

    def read(self, key: str) -> bytes:
        """GET the object."""
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)
            with response["Body"] as body:
                return body.read()
        except Exception as exc:
            raise classify_s3_error(exc, bucket=self.bucket, key=key) from exc


class AzureSource:
    """A blob container, reached by connection string, account URL + key, account URL + SAS,
    or anonymously (public containers) with an account URL alone."""

    def __init__(
        self,
        container: str,
        prefix: str = "",
        connection_string: str | None = None,
        account_url: str | None = None,
        account_key: str | None = None,
        sas_token: str | None = None,
        *,
        client: ContainerClient | None = None,
    ) -> None:
        if not container:
            raise PermanentSourceError("an Azure source needs a container name")
        self.container = container
        self.prefix = _folder_prefix(prefix)
        if client is None:
            from app.storage.azure_blob import make_container_client

            try:
                client = make_container_client(
                    container,
                    connection_string=connection_string,
                    account_url=account_url,
                    account_key=account_key,
                    sas_token=sas_token,
                    retry_total=0,
                    connection_timeout=5.0,
                    read_timeout=30.0,
                )
            except Exception as exc:  # malformed connection string or URL
                raise classify_azure_error(exc, container=container) from exc
        self.client = client

    def __repr__(self) -> str:
        return f"AzureSource(container={self.container!r}, prefix={self.prefix!r})"

    def list(self, prefix: str = "") -> Iterator[SourceObject]:
        """Page through the container listing."""
        try:
            for item in self.client.list_blobs(name_starts_with=self.prefix + prefix):
                if item.name.endswith("/"):
                    continue
                modified = item.last_modified or datetime.now(UTC)
                yield SourceObject(
                    key=item.name[len(self.prefix) :],
                    size=int(item.size),
                    etag=strip_etag(item.etag),
                    last_modified=modified if modified.tzinfo else modified.replace(tzinfo=UTC),
                )
        except Exception as exc:
            raise classify_azure_error(exc, container=self.container) from exc

    def read(self, key: str) -> bytes:
        """Download the blob."""
        try:
            return self.client.download_blob(self.prefix + key).readall()
        except Exception as exc:
            raise classify_azure_error(exc, container=self.container, key=key) from exc


class FolderSource:
    """A directory on the server (etag = size and mtime, cheap and changes with the content)."""

    def __init__(self, path: Path | str, prefix: str = "") -> None:
        self.root = Path(path).resolve()
        self.prefix = _folder_prefix(prefix)

    def __repr__(self) -> str:
        return f"FolderSource({str(self.root)!r}, prefix={self.prefix!r})"

    def list(self, prefix: str = "") -> Iterator[SourceObject]:
        """Walk the folder in key order."""
        if not self.root.is_dir():
            raise PermanentSourceError(f"folder '{self.root}' does not exist")
        wanted = self.prefix + prefix
        keys: list[str] = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = [name for name in dirnames if not name.startswith(".")]
            relative = Path(dirpath).relative_to(self.root).as_posix()
            for name in filenames:
                key = name if relative == "." else f"{relative}/{name}"
                if key.startswith(wanted) and not name.startswith("."):
                    keys.append(key)
        for key in sorted(keys):
            try:
                stat = (self.root / key).stat()
            except FileNotFoundError:
                continue
            yield SourceObject(
                key=key[len(self.prefix) :],
                size=stat.st_size,
                etag=f"{stat.st_size:x}-{stat.st_mtime_ns:x}",
                last_modified=datetime.fromtimestamp(stat.st_mtime, tz=UTC),
            )

    def read(self, key: str) -> bytes:
        """Read the file; keys cannot climb out of the folder."""
        try:
            path = self.root / validate_key(join_prefix(self.prefix, key))
            if not path.resolve().is_relative_to(self.root):
                raise InvalidKey(key, "resolves outside the folder")
            return path.read_bytes()
        except InvalidKey as exc:
            raise PermanentSourceError(str(exc)) from exc
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise PermanentSourceError(f"file '{key}' not found in '{self.root}'") from exc
        except PermissionError as exc:
            raise PermanentSourceError(f"permission denied reading '{key}'") from exc
        except OSError as exc:
            raise TransientSourceError(f"could not read '{key}': {exc}") from exc


def open_source(kind: str, settings: Mapping[str, Any], secrets: Mapping[str, Any]) -> SourceClient:
    """Build the client for a `storage_source` row.

    s3: settings bucket, prefix, region, endpoint_url; secrets access_key_id, secret_access_key.
    azure: settings container, prefix, account_url; secrets connection_string, account_key,
    sas_token. folder: settings path, prefix.
    """

    def value(mapping: Mapping[str, Any], name: str) -> Any:
        found = mapping.get(name)
        return None if found == "" else found

    if kind == "s3":
        return S3Source(
            bucket=value(settings, "bucket") or "",
            prefix=value(settings, "prefix") or "",
            region=value(settings, "region"),
            endpoint_url=value(settings, "endpoint_url"),
            access_key_id=value(secrets, "access_key_id"),
            secret_access_key=value(secrets, "secret_access_key"),
        )
    if kind == "azure":
        if not (value(secrets, "connection_string") or value(settings, "account_url")):
            raise PermanentSourceError("an Azure source needs a connection string or account URL")
        return AzureSource(
            container=value(settings, "container") or "",
            prefix=value(settings, "prefix") or "",
            connection_string=value(secrets, "connection_string"),
            account_url=value(settings, "account_url"),
            account_key=value(secrets, "account_key"),
            sas_token=value(secrets, "sas_token"),
        )
    if kind == "folder":
        path = value(settings, "path")
        if not path:
            raise PermanentSourceError("a folder source needs a path")
        return FolderSource(path, prefix=value(settings, "prefix") or "")
    raise PermanentSourceError(
        f"unknown source kind {kind!r}; expected one of {', '.join(SOURCE_KINDS)}"
    )
