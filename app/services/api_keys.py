"""API keys: shown once at creation, stored as a prefix and a hash."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import InvalidInput, NotFound
from app.models import ApiKey, User, utcnow
from app.security import hash_api_secret, new_api_key, secrets_equal, split_api_key


def get_all(*, session: Session, user: User) -> list[ApiKey]:
    """The user's keys that are not revoked, newest first."""
    query = (
        select(ApiKey)
        .where(ApiKey.user_id == user.id, ApiKey.revoked_at.is_(None))
        .order_by(ApiKey.id.desc())
    )
    return list(session.scalars(query))


def create(*, session: Session, user: User, name: str) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the full key, which is never retrievable again."""
    name = name.strip()
    if not name:
        raise InvalidInput("the key needs a name")
    full_key, prefix, secret_hash = new_api_key()
    api_key = ApiKey(user_id=user.id, name=name[:100], prefix=prefix, secret_hash=secret_hash)
    session.add(api_key)
    session.commit()
    return api_key, full_key


def revoke(*, session: Session, user: User, key_id: int) -> None:
    """Revoke one of the user's keys."""
    api_key = session.get(ApiKey, key_id)
    if api_key is None or api_key.user_id != user.id or api_key.revoked_at is not None:
        raise NotFound(f"API key {key_id} not found")
    api_key.revoked_at = utcnow()
    session.commit()


def authenticate(*, session: Session, key: str) -> User | None:
    """The active user owning this key, or None; records when the key was last used."""
    parts = split_api_key(key)
    if parts is None:
        return None
    prefix, secret = parts
    api_key = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    if api_key is None or api_key.revoked_at is not None:
        return None
    if not secrets_equal(api_key.secret_hash, hash_api_secret(secret)):
        return None
    user = api_key.user
    if not user.is_active:
        return None
    now = utcnow()
    # Throttled so that a busy client does not turn every request into a write.
    if api_key.last_used_at is None or (now - api_key.last_used_at).total_seconds() > 60:
        api_key.last_used_at = now
        session.commit()
    return user
