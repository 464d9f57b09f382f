"""S3 specifics against moto's server: the configured prefix and multipart uploads."""

from __future__ import annotations

import os

import pytest
from boto3.s3.transfer import TransferConfig

from app.storage.s3 import S3BlobStore
from tests.fixtures.cloud import S3_ACCESS_KEY_ID, S3_REGION, S3_SECRET_ACCESS_KEY, s3_client

MB = 1024 * 1024


def make_store(endpoint: str, bucket: str, **options: object) -> S3BlobStore:
    return S3BlobStore(
        bucket,
        region=S3_REGION,
        endpoint_url=endpoint,
        access_key_id=S3_ACCESS_KEY_ID,
        secret_access_key=S3_SECRET_ACCESS_KEY,
        **options,  # type: ignore[arg-type]
    )


def test_prefix_is_applied_and_hidden(s3_server: str, s3_bucket: str) -> None:
    raw = s3_client(s3_server)
    raw.put_object(Bucket=s3_bucket, Key="not-ours.txt", Body=b"x")
    raw.put_object(Bucket=s3_bucket, Key="polytag-other/also-not-ours.txt", Body=b"x")
    store = make_store(s3_server, s3_bucket, prefix="/polytag/")

    store.put("projects/1/a.jpg", b"a", content_type="image/jpeg")

    head = raw.head_object(Bucket=s3_bucket, Key="polytag/projects/1/a.jpg")
    assert head["ContentType"] == "image/jpeg"
    assert [o.key for o in store.list("")] == ["projects/1/a.jpg"]


def test_multipart_upload(s3_server: str, s3_bucket: str) -> None:
    store = make_store(
        s3_server,
        s3_bucket,
        transfer_config=TransferConfig(multipart_threshold=5 * MB, multipart_chunksize=5 * MB),
    )
    data = os.urandom(11 * MB)

    info = store.put("runs/1/model.onnx", data)

    # A multipart ETag is "<md5 of part md5s>-<part count>".
    assert info.etag.endswith("-3")
    assert info.size == len(data)
    assert store.read_bytes("runs/1/model.onnx") == data


def test_missing_bucket_raises(s3_server: str) -> None:
    store = make_store(s3_server, "no-such-bucket-polytag")

    with pytest.raises(Exception, match="NoSuchBucket"):
        store.put("a.txt", b"a")
