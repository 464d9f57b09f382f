"""Blob storage for Polytag's own files: pick a backend by name or from the settings object."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.storage.base import (
    BlobNotFound,
    BlobStore,
    InvalidKey,
    ObjectInfo,
    StorageError,
    validate_key,
    validate_prefix,
)

__all__ = [
    "BACKENDS",
    "BlobNotFound",
    "BlobStore",
    "InvalidKey",
    "ObjectInfo",
    "StorageError",
    "blob_store_from_settings",
    "create_blob_store",
    "validate_key",
    "validate_prefix",
]

BACKENDS = ("local", "s3", "azure")


def create_blob_store(backend: str, **options: Any) -> BlobStore:
    """Build a store: "local" (root), "s3" (bucket, prefix, region, endpoint_url,
    access_key_id, secret_access_key) or "azure" (container, prefix, connection_string,
    account_url, account_key, sas_token)."""
    # Backends import their SDKs lazily so a local install never pays for boto3 or azure.
    if backend == "local":
        from app.storage.local import LocalBlobStore

        return LocalBlobStore(**options)
    if backend == "s3":
        from app.storage.s3 import S3BlobStore

        return S3BlobStore(**options)
    if backend == "azure":
        from app.storage.azure_blob import AzureBlobStore

        return AzureBlobStore(**options)
    raise ValueError(f"unknown storage backend {backend!r}; expected one of {', '.join(BACKENDS)}")


def blob_store_from_settings(settings: Any) -> BlobStore:
    """Build the store the settings object describes (`storage_backend` and friends)."""
    backend = _setting(settings, "storage_backend") or "local"
    if backend == "local":
        data_dir = _setting(settings, "data_dir") or "polytag-data"
        return create_blob_store("local", root=Path(data_dir) / "blobs")
    if backend == "s3":
        bucket = _setting(settings, "s3_bucket")
        if not bucket:
            raise ValueError("storage_backend is 's3' but s3_bucket is not set")
        return create_blob_store(
            "s3",
            bucket=bucket,
            prefix=_setting(settings, "s3_prefix") or "",
            region=_setting(settings, "s3_region"),
            endpoint_url=_setting(settings, "s3_endpoint_url"),
            access_key_id=_setting(settings, "s3_access_key_id"),
            secret_access_key=_setting(settings, "s3_secret_access_key"),
        )
    if backend == "azure":
        container = _setting(settings, "azure_container")
        if not container:
            raise ValueError("storage_backend is 'azure' but azure_container is not set")
        return create_blob_store(
            "azure",
            container=container,
            prefix=_setting(settings, "azure_prefix") or "",
            connection_string=_setting(settings, "azure_connection_string"),
            account_url=_setting(settings, "azure_account_url"),
            account_key=_setting(settings, "azure_account_key"),
            sas_token=_setting(settings, "azure_sas_token"),
        )
    raise ValueError(f"unknown storage_backend {backend!r}; expected one of {', '.join(BACKENDS)}")


def _setting(settings: Any, name: str) -> Any:
    # Settings use "" for "not set"; the backends expect None.
    value = getattr(settings, name, None)
    return None if value == "" else value
