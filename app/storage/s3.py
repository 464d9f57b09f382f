"""Blob storage on Amazon S3 or any S3-compatible endpoint (MinIO, Ceph, R2...) via boto3."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, BinaryIO, cast

import boto3
from boto3.s3.transfer import TransferConfig
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from app.storage.base import (
    CHUNK_SIZE,
    BlobNotFound,
    ObjectInfo,
    StorageError,
    as_stream,
    join_prefix,
    strip_etag,
    validate_key,
    validate_prefix,
)

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

# DeleteObjects takes at most this many keys per request.
DELETE_BATCH = 1000
# Multipart above 16 MB in 16 MB parts: checkpoints and exports stream without buffering whole.
TRANSFER_CONFIG = TransferConfig(
    multipart_threshold=16 * CHUNK_SIZE, multipart_chunksize=16 * CHUNK_SIZE
)
NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound"})


def make_s3_client(
    *,
    region: str | None = None,
    endpoint_url: str | None = None,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    anonymous: bool = False,
    max_attempts: int = 3,
    connect_timeout: float = 10.0,
    read_timeout: float = 60.0,
) -> S3Client:
    """A boto3 S3 client; without keys boto3's usual chain (env, profile, IAM role) is used,
    unless `anonymous` asks for unsigned requests (public buckets)."""
    config = Config(
        region_name=region or None,
        signature_version=UNSIGNED if anonymous else "s3v4",
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        # Custom endpoints (MinIO, moto, IPs) rarely support virtual-hosted bucket names.
        s3={"addressing_style": "path" if endpoint_url else "auto"},
    )
    session = boto3.session.Session(
        aws_access_key_id=access_key_id or None,
        aws_secret_access_key=secret_access_key or None,
        region_name=region or None,
    )
    return session.client("s3", endpoint_url=endpoint_url or None, config=config)


def error_code(exc: ClientError) -> str:
    """The S3 error code of a ClientError ("NoSuchKey", "404", "AccessDenied"...)."""
    return str(exc.response.get("Error", {}).get("Code", ""))


class S3BlobStore:
    """Objects live in `bucket` under `prefix`; keys given to and returned by this class omit it."""

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
        transfer_config: TransferConfig = TRANSFER_CONFIG,
    ) -> None:
        if not bucket:
            raise ValueError("S3 storage needs a bucket name")
        self.bucket = bucket
        self.transfer_config = transfer_config
        self.prefix = validate_prefix(prefix.strip("/"))
        self.client = client or make_s3_client(
            region=region,
            endpoint_url=endpoint_url,
            access_key_id=access_key_id,
            secret_access_key=secret_access_key,
        )

    def __repr__(self) -> str:
        return f"S3BlobStore(bucket={self.bucket!r}, prefix={self.prefix!r})"

    def put(
        self, key: str, stream: BinaryIO | bytes, content_type: str | None = None
    ) -> ObjectInfo:
        """Upload (multipart for big streams) and return the stored object's details."""
        full_key = self._full_key(key)
        extra: dict[str, Any] = {"ContentType": content_type} if content_type else {}
        self.client.upload_fileobj(
            as_stream(stream), self.bucket, full_key, ExtraArgs=extra, Config=self.transfer_config
        )
        head = self.client.head_object(Bucket=self.bucket, Key=full_key)
        return ObjectInfo(
            key=key,
            size=int(head["ContentLength"]),
            etag=strip_etag(head.get("ETag")),
            last_modified=head["LastModified"],
        )

    def open(self, key: str) -> BinaryIO:
        """Stream the object's body; the caller closes it."""
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._full_key(key))
        except ClientError as exc:
            if error_code(exc) in NOT_FOUND_CODES:
                raise BlobNotFound(key) from None
            raise
        # botocore's StreamingBody is an io.IOBase with read(); good enough for readers.
        return cast(BinaryIO, response["Body"])

    def read_bytes(self, key: str) -> bytes:
        """Download the whole object."""
        with self.open(key) as body:
            return body.read()

    def exists(self, key: str) -> bool:
        """HEAD the object."""
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._full_key(key))
        except ClientError as exc:
            if error_code(exc) in NOT_FOUND_CODES:
                return False
            raise
        return True

    def delete(self, key: str) -> None:
        """Delete the object (S3 deletes are idempotent)."""
        self.client.delete_object(Bucket=self.bucket, Key=self._full_key(key))

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Page through ListObjectsV2 (S3 returns keys in UTF-8 byte order)."""
        validate_prefix(prefix)
        strip = len(self.prefix) + 1 if self.prefix else 0
        paginator = self.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=self.bucket, Prefix=join_prefix(self.prefix, prefix))
        for page in pages:
            for item in page.get("Contents", []):
                yield ObjectInfo(
                    key=item["Key"][strip:],
                    size=int(item["Size"]),
                    etag=strip_etag(item.get("ETag")),
                    last_modified=item["LastModified"],
                )

    def url(self, key: str, expires: int = 3600) -> str | None:
        """A presigned GET URL (signing is local; it does not check that the object exists)."""
        return self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": self._full_key(key)},
            ExpiresIn=expires,
        )

    def delete_prefix(self, prefix: str) -> None:
        """Delete every object under `prefix`, a thousand per request."""
        validate_prefix(prefix, allow_empty=False)
        batch: list[str] = []
        for info in self.list(prefix):
            batch.append(self._full_key(info.key))
            if len(batch) == DELETE_BATCH:
                self._delete_batch(batch)
                batch = []
        if batch:
            self._delete_batch(batch)

    def _delete_batch(self, keys: Sequence[str]) -> None:
        response = self.client.delete_objects(
            Bucket=self.bucket,
            Delete={"Objects": [{"Key": key} for key in keys], "Quiet": True},
        )
        errors = response.get("Errors", [])
        if errors:
            first = errors[0]
            raise StorageError(
                f"could not delete {len(errors)} objects from bucket '{self.bucket}', "
                f"first: {first.get('Key')}: {first.get('Message')}"
            )

    def _full_key(self, key: str) -> str:
        return join_prefix(self.prefix, validate_key(key))
