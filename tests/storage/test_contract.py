"""One behaviour contract for every BlobStore backend, run against real protocols:
a local directory, moto's S3 server over HTTP, and Azurite over HTTP."""

from __future__ import annotations

import hashlib
import io
import os
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from app.storage import (
    BlobNotFound,
    BlobStore,
    InvalidKey,
    blob_store_from_settings,
    create_blob_store,
)
from tests.fixtures.cloud import S3_ACCESS_KEY_ID, S3_REGION, S3_SECRET_ACCESS_KEY

BACKENDS = ["local", "s3", "azure"]


def make_store(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if backend == "local":
        return create_blob_store("local", root=tmp_path / "blobs")
    if backend == "s3":
        return create_blob_store(
            "s3",
            bucket=request.getfixturevalue("s3_bucket"),
            prefix="polytag",
            region=S3_REGION,
            endpoint_url=request.getfixturevalue("s3_server"),
            access_key_id=S3_ACCESS_KEY_ID,
            secret_access_key=S3_SECRET_ACCESS_KEY,
        )
    return create_blob_store(
        "azure",
        container=request.getfixturevalue("azure_container"),
        prefix="polytag",
        connection_string=request.getfixturevalue("azurite_server"),
    )


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    return make_store(request.param, request, tmp_path)


class FailingStream(io.RawIOBase):
    """Yields some bytes, then fails like a dropped client upload."""

    def __init__(self) -> None:
        super().__init__()
        self.sent = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self.sent:
            raise OSError("client went away")
        self.sent = True
        buffer[:4] = b"half"
        return 4


def test_put_then_read_back(store: BlobStore) -> None:
    info = store.put("projects/1/assets/cat.jpg", b"meow", content_type="image/jpeg")

    assert info.key == "projects/1/assets/cat.jpg"
    assert info.size == 4
    assert info.etag
    assert info.last_modified.tzinfo is not None
    assert abs(info.last_modified - datetime.now(UTC)) < timedelta(minutes=5)
    assert store.exists("projects/1/assets/cat.jpg")
    assert store.read_bytes("projects/1/assets/cat.jpg") == b"meow"
    with store.open("projects/1/assets/cat.jpg") as handle:
        assert handle.read() == b"meow"


def test_put_accepts_a_stream(store: BlobStore) -> None:
    info = store.put("runs/7/metrics.json", io.BytesIO(b'{"loss": 0.5}'), "application/json")

    assert info.size == 13
    assert store.read_bytes("runs/7/metrics.json") == b'{"loss": 0.5}'


def test_missing_object(store: BlobStore) -> None:
    assert not store.exists("nope/missing.bin")
    with pytest.raises(BlobNotFound) as caught:
        store.open("nope/missing.bin")
    assert caught.value.key == "nope/missing.bin"
    with pytest.raises(BlobNotFound):
        store.read_bytes("nope/missing.bin")


def test_delete_is_idempotent(store: BlobStore) -> None:
    store.put("a/b.txt", b"x")

    store.delete("a/b.txt")
    store.delete("a/b.txt")

    assert not store.exists("a/b.txt")
    assert list(store.list("a/")) == []


def test_list_filters_by_prefix_in_key_order(store: BlobStore) -> None:
    written = {
        "projects/1/assets/b.jpg": b"bb",
        "projects/1/assets/a.jpg": b"a",
        "projects/1/thumbs/a.jpg": b"ttt",
        "projects/10/assets/c.jpg": b"cccc",
    }
    infos = {key: store.put(key, data) for key, data in written.items()}

    assert [o.key for o in store.list("projects/1/")] == [
        "projects/1/assets/a.jpg",
        "projects/1/assets/b.jpg",
        "projects/1/thumbs/a.jpg",
    ]
    assert [o.key for o in store.list("projects/1/assets/")] == [
        "projects/1/assets/a.jpg",
        "projects/1/assets/b.jpg",
    ]
    listed = {o.key: o for o in store.list("")}
    assert sorted(listed) == sorted(written)
    for key, data in written.items():
        assert listed[key].size == len(data)
        assert listed[key].etag == infos[key].etag
        assert listed[key].last_modified.tzinfo is not None
    # A partial last segment works like a string prefix, as on S3.
    assert [o.key for o in store.list("projects/1")] == sorted(written)


def test_overwrite_replaces_content_and_etag(store: BlobStore) -> None:
    first = store.put("runs/1/best.pt", b"version one")
    second = store.put("runs/1/best.pt", b"version two!")

    assert store.read_bytes("runs/1/best.pt") == b"version two!"
    assert second.size == 12
    assert second.etag != first.etag
    assert [(o.key, o.etag) for o in store.list("runs/")] == [("runs/1/best.pt", second.etag)]


def test_large_object_round_trip(store: BlobStore) -> None:
    data = os.urandom(5 * 1024 * 1024 + 123)

    info = store.put("runs/2/model.onnx", io.BytesIO(data))

    assert info.size == len(data)
    with store.open("runs/2/model.onnx") as handle:
        chunks = []
        while chunk := handle.read(1024 * 1024):
            chunks.append(chunk)
    assert hashlib.sha256(b"".join(chunks)).digest() == hashlib.sha256(data).digest()


def test_failed_upload_keeps_previous_object(store: BlobStore) -> None:
    store.put("projects/1/assets/x.png", b"original")

    with pytest.raises(OSError, match="client went away"):
        store.put("projects/1/assets/x.png", io.BufferedReader(FailingStream()))

    assert store.read_bytes("projects/1/assets/x.png") == b"original"
    assert [o.key for o in store.list("")] == ["projects/1/assets/x.png"]


def test_url(store: BlobStore, request: pytest.FixtureRequest) -> None:
    store.put("projects/1/thumbs/dog.webp", b"woof", content_type="image/webp")

    url = store.url("projects/1/thumbs/dog.webp", expires=60)

    if "local" in request.node.callspec.id:
        assert url is None
        return
    assert url is not None
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == b"woof"
        assert response.headers["Content-Type"] == "image/webp"


def test_delete_prefix_removes_only_that_prefix(store: BlobStore) -> None:
    for key in ["runs/1/a", "runs/1/sub/b", "runs/10/c", "projects/1/d"]:
        store.put(key, b"x")

    store.delete_prefix("runs/1/")

    assert [o.key for o in store.list("")] == ["projects/1/d", "runs/10/c"]
    with pytest.raises(InvalidKey):
        store.delete_prefix("")


BAD_KEYS = [
    "",
    "/etc/passwd",
    "../escape.txt",
    "projects/../../escape.txt",
    "projects/..",
    "a\\..\\b",
    "a\x00b",
    "a//b",
    "a/./b",
    "dir/",
]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_invalid_keys_are_rejected(store: BlobStore, key: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidKey):
        store.put(key, b"evil")
    with pytest.raises(InvalidKey):
        store.open(key)
    with pytest.raises(InvalidKey):
        store.exists(key)
    with pytest.raises(InvalidKey):
        store.delete(key)
    with pytest.raises(InvalidKey):
        store.url(key)
    assert list(store.list("")) == []
    assert not (tmp_path / "escape.txt").exists()


@pytest.mark.parametrize("prefix", ["../", "/abs", "a/../", "a\\b"])
def test_invalid_list_prefix_is_rejected(store: BlobStore, prefix: str) -> None:
    with pytest.raises(InvalidKey):
        list(store.list(prefix))


@pytest.mark.parametrize("backend", BACKENDS)
def test_store_from_settings(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    settings = SimpleNamespace(
        storage_backend=backend, data_dir=tmp_path, s3_prefix="", azure_prefix=""
    )
    if backend == "s3":
        settings.s3_bucket = request.getfixturevalue("s3_bucket")
        settings.s3_endpoint_url = request.getfixturevalue("s3_server")
        settings.s3_region = S3_REGION
        settings.s3_access_key_id = S3_ACCESS_KEY_ID
        settings.s3_secret_access_key = S3_SECRET_ACCESS_KEY
    elif backend == "azure":
        settings.azure_container = request.getfixturevalue("azure_container")
        settings.azure_connection_string = request.getfixturevalue("azurite_server")
        # Unset settings are "" in app.config; they must not be taken for values.
        settings.azure_account_url = ""
        settings.azure_sas_token = ""

    store = blob_store_from_settings(settings)
    store.put("hello.txt", b"hi")

    assert store.read_bytes("hello.txt") == b"hi"
    if backend == "local":
        assert (tmp_path / "blobs" / "hello.txt").read_bytes() == b"hi"


def test_unknown_backend() -> None:
    with pytest.raises(ValueError, match="unknown storage backend"):
        create_blob_store("ftp")
    with pytest.raises(ValueError, match="s3_bucket"):
        blob_store_from_settings(SimpleNamespace(storage_backend="s3", s3_bucket=""))
