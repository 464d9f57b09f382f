"""/api/v1/me, /api/v1/api-keys and /api/v1/users"""

from __future__ import annotations

from fastapi import APIRouter, status

from app.db import SessionDep
from app.deps import AdminUser, CurrentUser
from app.schemas.users import ApiKeyCreate, ApiKeyCreated, ApiKeyRead, UserCreate, UserRead
from app.services import api_keys as api_key_service
from app.services import users as user_service

router = APIRouter(tags=["users"])


@router.get("/me", response_model=UserRead)
def read_me(user: CurrentUser) -> UserRead:
    """The caller's account."""
    return UserRead.model_validate(user)


@router.get("/api-keys", response_model=list[ApiKeyRead])
def list_api_keys(user: CurrentUser, session: SessionDep) -> list[ApiKeyRead]:
    """The caller's active API keys (prefixes only)."""
    keys = api_key_service.get_all(session=session, user=user)
    return [ApiKeyRead.model_validate(api_key) for api_key in keys]


@router.post("/api-keys", response_model=ApiKeyCreated, status_code=status.HTTP_201_CREATED)
def create_api_key(body: ApiKeyCreate, user: CurrentUser, session: SessionDep) -> ApiKeyCreated:
    """Create an API key; the full key is in this response only."""
    api_key, full_key = api_key_service.create(session=session, user=user, name=body.name)
    return ApiKeyCreated(**ApiKeyRead.model_validate(api_key).model_dump(), key=full_key)


@router.delete("/api-keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_api_key(key_id: int, user: CurrentUser, session: SessionDep) -> None:
    """Revoke one of the caller's keys."""
    api_key_service.revoke(session=session, user=user, key_id=key_id)


@router.get("/users", response_model=list[UserRead])
def list_users(_admin: AdminUser, session: SessionDep) -> list[UserRead]:
    """All accounts (admin only)."""
    return [UserRead.model_validate(u) for u in user_service.get_all(session=session)]


@router.post("/users", response_model=UserRead, status_code=status.HTTP_201_CREATED)
def create_user(body: UserCreate, _admin: AdminUser, session: SessionDep) -> UserRead:
    """Create an account (admin only)."""
    user = user_service.create(
        session=session, email=body.email, password=body.password, is_admin=body.is_admin
    )
    return UserRead.model_validate(user)
