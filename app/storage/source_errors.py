"""Errors of external storage sources, sorted into "try again later" and "a person must act".

A sync job retries `TransientSourceError` (timeouts, 5xx, throttling, dropped connections) and
reports `PermanentSourceError` (missing bucket, bad credentials) with a message a user can act on.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.exceptions import IncompleteReadError as AzureIncompleteReadError
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
    PartialCredentialsError,
    SSLError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

T = TypeVar("T")


class SourceError(Exception):
    """Base class; `str()` is a message meant for the user."""


class TransientSourceError(SourceError):
    """Worth retrying: the source was unreachable, slow, throttling or failing on its side."""


class PermanentSourceError(SourceError):
    """Retrying will not help until someone fixes the configuration or the source."""


S3_TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestThrottled",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "ServiceUnavailable",
    }
)
S3_AUTH_CODES = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "TokenRefreshRequired",
        "InvalidClientTokenId",
        "AuthorizationHeaderMalformed",
    }
)
S3_DENIED_CODES = frozenset({"AccessDenied", "AllAccessDisabled", "AccountProblem", "403"})
S3_MISSING_OBJECT_CODES = frozenset({"NoSuchKey", "NotFound", "404"})

AZURE_TRANSIENT_CODES = frozenset({"ServerBusy", "OperationTimedOut", "InternalError"})
AZURE_DENIED_CODES = frozenset(
    {
        "AuthorizationFailure",
        "AuthorizationPermissionMismatch",
        "AuthorizationResourceTypeMismatch",
        "AuthorizationServiceMismatch",
        "AuthorizationSourceIPMismatch",
        "AuthorizationProtocolMismatch",
        "InsufficientAccountPermissions",
        "AccountIsDisabled",
    }
)


def classify_s3_error(exc: Exception, *, bucket: str, key: str | None = None) -> SourceError:
    """Turn a boto3/botocore exception into a transient or permanent source error."""
    if isinstance(exc, SourceError):
        return exc
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        if code in S3_TRANSIENT_CODES or status >= 500 or status == 429:
            return TransientSourceError(f"bucket '{bucket}' is temporarily unavailable ({code})")
        if code == "NoSuchBucket":
            return PermanentSourceError(f"bucket '{bucket}' does not exist")
        if code in S3_AUTH_CODES:
            return PermanentSourceError(
                f"authentication failed for bucket '{bucket}': check the access key and secret "
                f"({code})"
            )
        if code in S3_DENIED_CODES:
            return PermanentSourceError(f"access denied to bucket '{bucket}'")
        if code in S3_MISSING_OBJECT_CODES and key is not None:
            return PermanentSourceError(f"object '{key}' not found in bucket '{bucket}'")
        message = exc.response.get("Error", {}).get("Message") or code
        return PermanentSourceError(f"bucket '{bucket}': {message}")
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return PermanentSourceError(f"authentication failed for bucket '{bucket}': {exc}")
    if isinstance(exc, SSLError):
        return PermanentSourceError(
            f"TLS error talking to the endpoint of bucket '{bucket}': {exc}"
        )
    if isinstance(exc, HTTPClientError | BotoConnectionError | IncompleteReadError):
        return TransientSourceError(f"could not reach bucket '{bucket}': {exc}")
    if isinstance(exc, BotoCoreError | ValueError):
        return PermanentSourceError(f"bucket '{bucket}': {exc}")
    return PermanentSourceError(f"bucket '{bucket}': unexpected {type(exc).__name__}: {exc}")


def classify_azure_error(exc: Exception, *, container: str, key: str | None = None) -> SourceError:
    """Turn an azure-core/azure-storage-blob exception into a transient or permanent error."""
    if isinstance(exc, SourceError):
        return exc
    if isinstance(exc, ServiceRequestError | ServiceResponseError | AzureIncompleteReadError):
        return TransientSourceError(f"could not reach container '{container}': {exc.message}")
    if isinstance(exc, HttpResponseError):
        raw_code = getattr(exc, "error_code", None) or ""
        # The SDK gives a StorageErrorCode enum for codes it knows, a plain str otherwise.
        code = str(getattr(raw_code, "value", raw_code))
        status = int(exc.status_code or 0)
        if code in AZURE_TRANSIENT_CODES or status >= 500 or status == 429:
            return TransientSourceError(
                f"container '{container}' is temporarily unavailable ({code or status})"
            )
        # Azurite answers a bad signature with AuthorizationFailure, Azure with
        # AuthenticationFailed; both say "failed to authenticate" in the message.
        rejected_signature = "failed to authenticate" in str(exc.message or "").lower()
        if code in AZURE_DENIED_CODES and not rejected_signature:
            return PermanentSourceError(f"access denied to container '{container}' ({code})")
        if isinstance(exc, ClientAuthenticationError) or status in (401, 403):
            return PermanentSourceError(
                f"authentication failed for container '{container}': check the connection "
                f"string, account key or SAS token ({code or status})"
            )
        if code == "ContainerNotFound" or (isinstance(exc, ResourceNotFoundError) and key is None):
            return PermanentSourceError(f"container '{container}' not found")
        if isinstance(exc, ResourceNotFoundError):
            return PermanentSourceError(f"blob '{key}' not found in container '{container}'")
        return PermanentSourceError(f"container '{container}': {code or status} {exc.reason}")
    if isinstance(exc, AzureError):
        return PermanentSourceError(f"container '{container}': {exc.message}")
    if isinstance(exc, ValueError):
        return PermanentSourceError(f"container '{container}': {exc}")
    return PermanentSourceError(f"container '{container}': unexpected {type(exc).__name__}: {exc}")


def retry(
    fn: Callable[[], T],
    attempts: int = 3,
    base_delay: float = 0.5,
    *,
    max_delay: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call `fn`, retrying `TransientSourceError` up to `attempts` calls with jittered backoff.

    Any other exception, `PermanentSourceError` included, propagates at once.
    """
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except TransientSourceError:
            if attempt == attempts:
                raise
            delay = min(max_delay, base_delay * 2 ** (attempt - 1))
            # Jitter so that workers that failed together do not retry together.
            sleep(delay * random.uniform(0.5, 1.0))
    raise AssertionError("unreachable")  # pragma: no cover
