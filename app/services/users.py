"""Accounts: first-run setup, creation and password sign-in."""

from __future__ import annotations

import re

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.errors import Conflict, InvalidInput, Unauthorized
from app.models import User
from app.security import hash_password, verify_password

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+$")
MIN_PASSWORD_LENGTH = 8


def count(*, session: Session) -> int:
    """Number of accounts."""
    return session.scalar(select(func.count()).select_from(User)) or 0


def get(*, session: Session, user_id: int) -> User | None:
    """The active user with this id, or None."""
    user = session.get(User, user_id)
    return user if user is not None and user.is_active else None


def get_all(*, session: Session) -> list[User]:
    """All accounts, oldest first."""
    return list(session.scalars(select(User).order_by(User.id)))


def create(*, session: Session, email: str, password: str, is_admin: bool = False) -> User:
    """Create an account; the email must be new and the password long enough."""
    email = email.strip().lower()
    if not EMAIL_RE.match(email):
        raise InvalidInput(f"'{email}' is not a valid email address")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise Conflict(f"an account with email '{email}' already exists")
    user = User(email=email, password_hash=hash_password(password), is_admin=is_admin)
    session.add(user)
    session.commit()
    return user


def create_first_admin(*, session: Session, email: str, password: str) -> User:
    """The one-time setup: create the admin, refused once any account exists."""
    if count(session=session) > 0:
        raise Conflict("setup is already done: sign in instead")
    return create(session=session, email=email, password=password, is_admin=True)


def authenticate(*, session: Session, email: str, password: str) -> User:
    """The user whose email and password match, else Unauthorized."""
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None or not user.is_active or not verify_password(user.password_hash, password):
        raise Unauthorized("wrong email or password")
    return user
