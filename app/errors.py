"""Domain errors raised by services, mapped to HTTP responses by `app.main`."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """An error a user can act on; `message` says what was wrong."""

    status_code = 400

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidInput(DomainError):
    status_code = 422


class NotFound(DomainError):
    status_code = 404


class Conflict(DomainError):
    status_code = 409


class PermissionDenied(DomainError):
    status_code = 403


class Unauthorized(DomainError):
    status_code = 401


class TooLarge(DomainError):
    status_code = 413
