"""Blob storage on Azure Blob Storage (or Azurite) via azure-storage-blob."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO

from azure.core.credentials import AzureSasCredential
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import (
    BlobSasPermissions,
    ContainerClient,
    ContentSettings,
    ExponentialRetry,
    StorageStreamDownloader,
    generate_blob_sas,
)

from app.storage.base import (
    BlobNotFound,
    ObjectInfo,
    as_stream,
    join_prefix,
    strip_etag,
    validate_key,
    validate_prefix,
)


def make_container_client(
    container: str,
    *,
    connection_string: str | None = None,
    account_url: str | None = None,
    account_key: str | None = None,
    sas_token: str | None = None,
    retry_total: int = 3,
    connection_timeout: float = 10.0,
    read_timeout: float = 60.0,
) -> ContainerClient:
    """A ContainerClient from a connection string, or an account URL plus a key or a SAS token.

    An account URL alone gives anonymous access (public containers only).
    """
    if not container:
        raise ValueError("Azure storage needs a container name")
    options: dict[str, Any] = {
        "connection_timeout": connection_timeout,
        "read_timeout": read_timeout,
        # The SDK default waits 15 s before the first retry; a web request cannot.
        "retry_policy": ExponentialRetry(
            initial_backoff=1, increment_base=2, retry_total=retry_total, random_jitter_range=1
        ),
    }
    if connection_string:
        return ContainerClient.from_connection_string(
            connection_string, container_name=container, **options
        )
    if not account_url:
        raise ValueError("Azure storage needs a connection string or an account URL")
    credential: str | AzureSasCredential | None = None
    if account_key:
        credential = account_key
    elif sas_token:
        credential = AzureSasCredential(sas_token.lstrip("?"))
    return ContainerClient(
        account_url=account_url, container_name=container, credential=credential, **options
    )


class AzureBlobStore:
    """Objects live in `container` under `prefix`; keys given to and returned here omit it."""

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
        self.prefix = validate_prefix(prefix.strip("/"))
        self.client = client or make_container_client(
            container,
            connection_string=connection_string,
            account_url=account_url,
            account_key=account_key,
            sas_token=sas_token,
        )
        self.container = self.client.container_name

    def __repr__(self) -> str:
        return f"AzureBlobStore(container={self.container!r}, prefix={self.prefix!r})"

    def put(
        self, key: str, stream: BinaryIO | bytes, content_type: str | None = None
    ) -> ObjectInfo:
        """Upload as a block blob (the SDK splits big streams into blocks)."""
        blob = self.client.get_blob_client(self._full_key(key))
        settings = ContentSettings(content_type=content_type) if content_type else None
        blob.upload_blob(as_stream(stream), overwrite=True, content_settings=settings)
        properties = blob.get_blob_properties()
        return ObjectInfo(
            key=key,
            size=int(properties.size),
            etag=strip_etag(properties.etag),
            last_modified=_utc(properties.last_modified),
        )

    def open(self, key: str) -> BinaryIO:
        """Stream the blob; bytes are fetched as the caller reads."""
        blob = self.client.get_blob_client(self._full_key(key))
        try:
            downloader = blob.download_blob()
        except ResourceNotFoundError:
            raise BlobNotFound(key) from None
        return io.BufferedReader(_DownloadReader(downloader))

    def read_bytes(self, key: str) -> bytes:
        """Download the whole blob."""
        blob = self.client.get_blob_client(self._full_key(key))
        try:
            return blob.download_blob().readall()
        except ResourceNotFoundError:
            raise BlobNotFound(key) from None

    def exists(self, key: str) -> bool:
        """HEAD the blob."""
        return bool(self.client.get_blob_client(self._full_key(key)).exists())

    def delete(self, key: str) -> None:
        """Delete the blob and its snapshots; a missing blob is fine."""
        with contextlib.suppress(ResourceNotFoundError):
            self.client.delete_blob(self._full_key(key), delete_snapshots="include")

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Page through the container listing (Azure returns names in lexical order)."""
        validate_prefix(prefix)
        strip = len(self.prefix) + 1 if self.prefix else 0
        for item in self.client.list_blobs(name_starts_with=join_prefix(self.prefix, prefix)):
            yield ObjectInfo(
                key=item.name[strip:],
                size=int(item.size),
                etag=strip_etag(item.etag),
                last_modified=_utc(item.last_modified),
            )

    def url(self, key: str, expires: int = 3600) -> str | None:
        """A read-only SAS URL when we hold the account key, else None.

        With a configured SAS token we return None rather than hand out a token that may also
        allow writes.
        """
        full_key = self._full_key(key)
        credential = self.client.credential
        account_name = getattr(credential, "account_name", None)
        account_key = getattr(credential, "account_key", None)
        if not account_name or not account_key:
            return None
        sas = generate_blob_sas(
            account_name=account_name,
            container_name=self.container,
            blob_name=full_key,
            account_key=account_key,
            permission=BlobSasPermissions(read=True),
            expiry=datetime.now(UTC) + timedelta(seconds=expires),
        )
        return f"{self.client.get_blob_client(full_key).url}?{sas}"

    def delete_prefix(self, prefix: str) -> None:
        """Delete every blob under `prefix`."""
        validate_prefix(prefix, allow_empty=False)
        for info in list(self.list(prefix)):
            self.delete(info.key)

    def _full_key(self, key: str) -> str:
        return join_prefix(self.prefix, validate_key(key))


class _DownloadReader(io.RawIOBase):
    """Adapts the SDK's downloader to a raw stream so callers get an ordinary file object."""

    def __init__(self, downloader: StorageStreamDownloader[bytes]) -> None:
        super().__init__()
        self._downloader = downloader

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._downloader.read(len(buffer))
        size = len(data)
        buffer[:size] = data
        return size


def _utc(value: datetime | None) -> datetime:
    # The SDK returns aware UTC datetimes; be explicit in case a version does not.
    if value is None:
        return datetime.now(UTC)
    return value if value.tzinfo else value.replace(tzinfo=UTC)
