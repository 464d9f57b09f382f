"""Azure specifics against Azurite: the configured prefix, credentials, SAS URLs."""

from __future__ import annotations

import urllib.request

from azure.storage.blob import ContainerClient

from app.storage.azure_blob import AzureBlobStore
from tests.fixtures.cloud import AZURITE_KEY


def account_url(connection_string: str) -> str:
    return connection_string.split("BlobEndpoint=")[1].rstrip(";")


def test_prefix_is_applied_and_hidden(azurite_server: str, azure_container: str) -> None:
    raw = ContainerClient.from_connection_string(azurite_server, azure_container)
    raw.upload_blob("not-ours.txt", b"x")
    store = AzureBlobStore(azure_container, prefix="polytag/", connection_string=azurite_server)

    store.put("projects/1/a.png", b"png", content_type="image/png")

    properties = raw.get_blob_client("polytag/projects/1/a.png").get_blob_properties()
    assert properties.content_settings.content_type == "image/png"
    assert [o.key for o in store.list("")] == ["projects/1/a.png"]


def test_account_url_and_key(azurite_server: str, azure_container: str) -> None:
    store = AzureBlobStore(
        azure_container, account_url=account_url(azurite_server), account_key=AZURITE_KEY
    )
    store.put("a.txt", b"hello")

    url = store.url("a.txt")

    assert url is not None and "sig=" in url
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == b"hello"


def test_sas_token_config_gives_no_presigned_url(azurite_server: str, azure_container: str) -> None:
    writer = AzureBlobStore(azure_container, connection_string=azurite_server)
    writer.put("a.txt", b"hello")
    sas_url = writer.url("a.txt")
    assert sas_url is not None
    token = sas_url.split("?", 1)[1]
    store = AzureBlobStore(
        azure_container, account_url=account_url(azurite_server), sas_token=token
    )

    # The configured token is never handed out, even as part of a URL.
    assert store.url("a.txt") is None
    assert store.read_bytes("a.txt") == b"hello"
