"""The classification table for SDK errors that the servers in the other tests cannot produce
on demand (throttling, 5xx, bad AWS keys)."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceResponseTimeoutError,
)
from botocore.exceptions import ClientError, NoCredentialsError, ReadTimeoutError

from app.storage.source_errors import (
    PermanentSourceError,
    TransientSourceError,
    classify_azure_error,
    classify_s3_error,
)


def client_error(code: str, status: int) -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": f"{code} happened"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, "ListObjectsV2")


def azure_error(
    kind: type[HttpResponseError], status: int, code: str, message: str = "failed"
) -> HttpResponseError:
    error = kind(message=message)
    error.status_code = status
    error.error_code = code  # type: ignore[attr-defined]
    return error


@pytest.mark.parametrize(
    ("error", "expected", "message"),
    [
        (client_error("SlowDown", 503), TransientSourceError, "temporarily unavailable"),
        (client_error("InternalError", 500), TransientSourceError, "temporarily unavailable"),
        (client_error("RequestTimeout", 400), TransientSourceError, "temporarily unavailable"),
        (client_error("NoSuchBucket", 404), PermanentSourceError, "bucket 'b' does not exist"),
        (client_error("AccessDenied", 403), PermanentSourceError, "access denied to bucket 'b'"),
        (client_error("InvalidAccessKeyId", 403), PermanentSourceError, "authentication failed"),
        (client_error("SignatureDoesNotMatch", 403), PermanentSourceError, "authentication"),
        (NoCredentialsError(), PermanentSourceError, "authentication failed"),
        (ReadTimeoutError(endpoint_url="http://s3"), TransientSourceError, "could not reach"),
    ],
)
def test_s3_errors(error: Exception, expected: type[Exception], message: str) -> None:
    classified = classify_s3_error(error, bucket="b")

    assert type(classified) is expected
    assert message in str(classified)


@pytest.mark.parametrize(
    ("error", "expected", "message"),
    [
        (azure_error(HttpResponseError, 503, "ServerBusy"), TransientSourceError, "temporarily"),
        (azure_error(HttpResponseError, 500, "InternalError"), TransientSourceError, "temporarily"),
        (ServiceResponseTimeoutError("read timed out"), TransientSourceError, "could not reach"),
        (
            azure_error(ClientAuthenticationError, 403, "AuthenticationFailed"),
            PermanentSourceError,
            "authentication failed",
        ),
        (
            azure_error(HttpResponseError, 403, "AuthorizationPermissionMismatch"),
            PermanentSourceError,
            "access denied to container 'c'",
        ),
        (
            azure_error(ResourceNotFoundError, 404, "ContainerNotFound"),
            PermanentSourceError,
            "container 'c' not found",
        ),
        (ValueError("Connection string is either blank or malformed."), PermanentSourceError, "c"),
    ],
)
def test_azure_errors(error: Exception, expected: type[Exception], message: str) -> None:
    classified = classify_azure_error(error, container="c")

    assert type(classified) is expected
    assert message in str(classified)
