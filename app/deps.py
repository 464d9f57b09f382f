"""Typed FastAPI dependencies: the current user, a project loaded or 404, blob storage."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated

from fastapi import Depends, Path, Request
from sqlalchemy.orm import Session

from app.db import SessionDep
from app.errors import PermissionDenied, Unauthorized
from app.models import Project, User
from app.security import new_csrf_token, secrets_equal
from app.services import api_keys as api_key_service
from app.services import projects as project_service
from app.services import users as user_service
from app.storage import BlobStore, blob_store_from_settings

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "x-csrf-token"


class LoginRequired(Exception):
    """A page needs a signed-in user; the handler redirects to the login or setup page."""


def csrf_token(request: Request) -> str:
    """The session's CSRF token, created on first use."""
    token = request.session.get("csrf")
    if not token:
        token = new_csrf_token()
        request.session["csrf"] = token
    return str(token)


def check_csrf(request: Request, submitted: str | None) -> None:
    """Refuse a state-changing request whose CSRF token does not match the session's."""
    expected = request.session.get("csrf")
    if not expected or not submitted or not secrets_equal(str(expected), submitted):
        raise PermissionDenied("missing or invalid CSRF token: reload the page and try again")


def _session_user(request: Request, session: Session) -> User | None:
    user_id = request.session.get("user_id")
    if not isinstance(user_id, int):
        return None
    return user_service.get(session=session, user_id=user_id)


def get_current_user(request: Request, session: SessionDep) -> User:
    """The caller: an API key (`Authorization: Bearer ...`) or a signed-in browser session."""
    authorization = request.headers.get("authorization", "")
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() == "bearer" and credentials:
        user = api_key_service.authenticate(session=session, key=credentials.strip())
        if user is None:
            raise Unauthorized("invalid or revoked API key")
        return user
    user = _session_user(request, session)
    if user is None:
        raise Unauthorized("sign in or send an API key as 'Authorization: Bearer <key>'")
    # Cookies ride along on cross-site requests, so cookie-authenticated writes need the token.
    if request.method not in SAFE_METHODS:
        check_csrf(request, request.headers.get(CSRF_HEADER))
    request.state.user = user
    return user


def get_page_user(request: Request, session: SessionDep) -> User:
    """The signed-in user of an HTML page, else a redirect to login (or first-run setup)."""
    user = _session_user(request, session)
    if user is None:
        raise LoginRequired()
    request.state.user = user
    return user


def get_admin_user(user: Annotated[User, Depends(get_current_user)]) -> User:
    """The current user, who must be an admin."""
    if not user.is_admin:
        raise PermissionDenied("only an admin can do this")
    return user


def get_project(
    session: SessionDep,
    _user: Annotated[User, Depends(get_current_user)],
    project_id: Annotated[int, Path()],
) -> Project:
    """The project named in the path (after authentication), or 404."""
    return project_service.get(session=session, project_id=project_id)


def get_page_project(
    session: SessionDep,
    _user: Annotated[User, Depends(get_page_user)],
    project_id: Annotated[int, Path()],
) -> Project:
    """The project of an HTML page, or 404."""
    return project_service.get(session=session, project_id=project_id)


@lru_cache(maxsize=4)
def _blob_store(backend: str, data_dir: str) -> BlobStore:
    from app.config import settings

    return blob_store_from_settings(settings)


def get_blob_store() -> BlobStore:
    """The blob store of Polytag's own files, as configured in settings."""
    from app.config import settings

    return _blob_store(settings.storage_backend, str(settings.data_dir))


CurrentUser = Annotated[User, Depends(get_current_user)]
AdminUser = Annotated[User, Depends(get_admin_user)]
PageUser = Annotated[User, Depends(get_page_user)]
ProjectDep = Annotated[Project, Depends(get_project)]
PageProjectDep = Annotated[Project, Depends(get_page_project)]
StorageDep = Annotated[BlobStore, Depends(get_blob_store)]
