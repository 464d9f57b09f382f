"""Source clients against moto's S3 server and Azurite over HTTP, plus a local folder."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import ContainerClient
from botocore import UNSIGNED

from app.storage.sources import (
    AzureSource,
    FolderSource,
    PermanentSourceError,
    S3Source,
    SourceClient,
    TransientSourceError,
    open_source,
    retry,
)
from tests.fixtures.cloud import (
    AZURITE_KEY,
    S3_ACCESS_KEY_ID,
    S3_REGION,
    S3_SECRET_ACCESS_KEY,
    azurite_connection_string,
    free_port,
    s3_client,
)

OBJECTS = {
    "photos/a.jpg": b"image a",
    "photos/sub/b.png": b"image bb",
    "photos-old/x.jpg": b"outside the prefix",
    "other/c.jpg": b"outside too",
}


def s3_source(endpoint: str, bucket: str, prefix: str = "photos") -> SourceClient:
    return open_source(
        "s3",
        {"bucket": bucket, "prefix": prefix, "region": S3_REGION, "endpoint_url": endpoint},
        {"access_key_id": S3_ACCESS_KEY_ID, "secret_access_key": S3_SECRET_ACCESS_KEY},
    )


@pytest.fixture
def filled_bucket(s3_server: str, s3_bucket: str) -> str:
    client = s3_client(s3_server)
    for key, data in OBJECTS.items():
        client.put_object(Bucket=s3_bucket, Key=key, Body=data)
    # Consoles create zero-byte "folder" objects; a sync must not import them.
    client.put_object(Bucket=s3_bucket, Key="photos/empty-folder/", Body=b"")
    return s3_bucket


@pytest.fixture
def filled_container(azurite_server: str, azure_container: str) -> str:
    client = ContainerClient.from_connection_string(azurite_server, azure_container)
    for key, data in OBJECTS.items():
        client.upload_blob(key, data)
    return azure_container


def test_s3_lists_and_reads_under_prefix(s3_server: str, filled_bucket: str) -> None:
    source = s3_source(s3_server, filled_bucket)

    listed = list(source.list())

    assert [o.key for o in listed] == ["a.jpg", "sub/b.png"]
    assert [o.size for o in listed] == [7, 8]
    head = s3_client(s3_server).head_object(Bucket=filled_bucket, Key="photos/a.jpg")
    assert listed[0].etag == head["ETag"].strip('"')
    assert listed[0].last_modified.tzinfo is not None
    assert source.read("sub/b.png") == b"image bb"
    assert [o.key for o in source.list("sub/")] == ["sub/b.png"]


def test_s3_etag_changes_when_object_changes(s3_server: str, filled_bucket: str) -> None:
    source = s3_source(s3_server, filled_bucket)
    before = {o.key: o.etag for o in source.list()}

    s3_client(s3_server).put_object(Bucket=filled_bucket, Key="photos/a.jpg", Body=b"new a")

    after = {o.key: o.etag for o in source.list()}
    assert after["a.jpg"] != before["a.jpg"]
    assert after["sub/b.png"] == before["sub/b.png"]


def test_s3_missing_bucket_is_permanent(s3_server: str) -> None:
    source = s3_source(s3_server, "no-such-bucket-polytag")

    with pytest.raises(
        PermanentSourceError, match="bucket 'no-such-bucket-polytag' does not exist"
    ):
        list(source.list())
    with pytest.raises(PermanentSourceError, match="no-such-bucket-polytag"):
        source.read("a.jpg")


def test_s3_missing_object_is_permanent(s3_server: str, filled_bucket: str) -> None:
    source = s3_source(s3_server, filled_bucket)

    with pytest.raises(PermanentSourceError, match=r"object 'gone\.jpg' not found"):
        source.read("gone.jpg")


def test_s3_unreachable_endpoint_is_transient() -> None:
    source = s3_source(f"http://127.0.0.1:{free_port()}", "bucket")

    with pytest.raises(TransientSourceError, match="could not reach bucket 'bucket'"):
        list(source.list())
    with pytest.raises(TransientSourceError):
        source.read("a.jpg")


def test_s3_source_without_keys_does_not_use_ambient_credentials(
    s3_server: str, filled_bucket: str
) -> None:
    # s3_server exports valid AWS_* keys; an anonymous source must not pick them up, so the
    # private bucket refuses it.
    source = S3Source(filled_bucket, prefix="photos", endpoint_url=s3_server, region=S3_REGION)

    assert source.client.meta.config.signature_version is UNSIGNED  # type: ignore[attr-defined]
    with pytest.raises(PermanentSourceError, match="access denied to bucket"):
        source.read("a.jpg")


def test_azure_lists_and_reads_under_prefix(azurite_server: str, filled_container: str) -> None:
    source = open_source(
        "azure",
        {"container": filled_container, "prefix": "photos/"},
        {"connection_string": azurite_server},
    )

    listed = list(source.list())

    assert [o.key for o in listed] == ["a.jpg", "sub/b.png"]
    assert [o.size for o in listed] == [7, 8]
    assert all(o.etag and o.last_modified.tzinfo is not None for o in listed)
    assert source.read("a.jpg") == b"image a"


def test_azure_account_url_and_key(azurite_server: str, filled_container: str) -> None:
    account_url = azurite_server.split("BlobEndpoint=")[1].rstrip(";")
    source = AzureSource(
        filled_container, prefix="photos", account_url=account_url, account_key=AZURITE_KEY
    )

    assert source.read("sub/b.png") == b"image bb"


def test_azure_missing_container_is_permanent(azurite_server: str) -> None:
    source = AzureSource("no-such-container", connection_string=azurite_server)

    with pytest.raises(PermanentSourceError, match="container 'no-such-container' not found"):
        list(source.list())
    with pytest.raises(PermanentSourceError, match="no-such-container"):
        source.read("a.jpg")


def test_azure_missing_blob_is_permanent(azurite_server: str, filled_container: str) -> None:
    source = AzureSource(filled_container, prefix="photos", connection_string=azurite_server)

    with pytest.raises(PermanentSourceError, match=r"blob 'gone\.jpg' not found"):
        source.read("gone.jpg")


def test_azure_wrong_key_is_authentication_failure(
    azurite_server: str, filled_container: str
) -> None:
    wrong_key = base64.b64encode(os.urandom(64)).decode()
    source = AzureSource(
        filled_container, connection_string=azurite_server.replace(AZURITE_KEY, wrong_key)
    )

    with pytest.raises(PermanentSourceError, match="authentication failed"):
        list(source.list())


def test_azure_unreachable_endpoint_is_transient() -> None:
    source = AzureSource("photos", connection_string=azurite_connection_string(free_port()))

    with pytest.raises(TransientSourceError, match="could not reach container 'photos'"):
        list(source.list())


def test_folder_source(tmp_path: Path) -> None:
    (tmp_path / "set" / "sub").mkdir(parents=True)
    (tmp_path / "set" / "a.jpg").write_bytes(b"aa")
    (tmp_path / "set" / "sub" / "b.jpg").write_bytes(b"bbb")
    (tmp_path / "set" / ".hidden").write_bytes(b"h")
    (tmp_path / "secret.txt").write_bytes(b"do not read")
    source = open_source("folder", {"path": str(tmp_path / "set")}, {})

    assert [(o.key, o.size) for o in source.list()] == [("a.jpg", 2), ("sub/b.jpg", 3)]
    assert source.read("sub/b.jpg") == b"bbb"
    with pytest.raises(PermanentSourceError, match="invalid storage key"):
        source.read("../secret.txt")
    with pytest.raises(PermanentSourceError, match="not found"):
        source.read("missing.jpg")
    with pytest.raises(PermanentSourceError, match="does not exist"):
        list(FolderSource(tmp_path / "nope").list())


@pytest.mark.parametrize(
    ("kind", "settings", "message"),
    [
        ("ftp", {}, "unknown source kind"),
        ("s3", {}, "needs a bucket"),
        ("azure", {"container": "c"}, "connection string or account URL"),
        ("folder", {}, "needs a path"),
    ],
)
def test_open_source_rejects_bad_configuration(
    kind: str, settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(PermanentSourceError, match=message):
        open_source(kind, settings, {})


def test_retry_recovers_from_transient_errors() -> None:
    calls: list[int] = []
    sleeps: list[float] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise TransientSourceError("503")
        return "ok"

    assert retry(flaky, attempts=4, base_delay=0.1, sleep=sleeps.append) == "ok"
    assert len(calls) == 3
    assert len(sleeps) == 2
    assert 0.05 <= sleeps[0] <= 0.1
    assert 0.1 <= sleeps[1] <= 0.2


def test_retry_gives_up_after_the_last_attempt() -> None:
    calls: list[int] = []

    def down() -> None:
        calls.append(1)
        raise TransientSourceError("still down")

    with pytest.raises(TransientSourceError, match="still down"):
        retry(down, attempts=3, base_delay=0.0, sleep=lambda _: None)
    assert len(calls) == 3


def test_retry_does_not_retry_permanent_errors() -> None:
    calls: list[int] = []

    def missing() -> None:
        calls.append(1)
        raise PermanentSourceError("bucket 'x' does not exist")

    with pytest.raises(PermanentSourceError):
        retry(missing, attempts=5, base_delay=0.0, sleep=lambda _: None)
    assert calls == [1]


def test_retry_against_a_real_unreachable_source() -> None:
    source = s3_source(f"http://127.0.0.1:{free_port()}", "bucket")
    sleeps: list[float] = []

    with pytest.raises(TransientSourceError):
        retry(lambda: list(source.list()), attempts=2, base_delay=0.01, sleep=sleeps.append)
    assert len(sleeps) == 1
