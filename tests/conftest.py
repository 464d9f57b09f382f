"""Test setup: a throwaway data dir, SQLite by default or PostgreSQL when
POLYTAG_TEST_DATABASE_URL is set, and factories for the rows most tests need."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# Settings are read at import time, so the environment is arranged before `app` is imported.
_DATA_DIR = Path(tempfile.mkdtemp(prefix="polytag-test-"))
_TEST_DB = os.environ.get("POLYTAG_TEST_DATABASE_URL", "")
_TEST_BROKER = os.environ.get("POLYTAG_TEST_BROKER_URL", "")
os.environ["POLYTAG_DATA_DIR"] = str(_DATA_DIR)
os.environ["POLYTAG_DATABASE_URL"] = _TEST_DB or f"sqlite:///{_DATA_DIR / 'test.db'}"
os.environ["POLYTAG_BROKER_URL"] = _TEST_BROKER or f"sqla+sqlite:///{_DATA_DIR / 'broker.db'}"
os.environ.pop("POLYTAG_RESULT_BACKEND", None)
os.environ.setdefault("POLYTAG_SECRET_KEY", "test-secret-key-that-is-long-enough-0123456789")
os.environ["POLYTAG_STORAGE_BACKEND"] = "local"

from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import inspect, text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from app.config import settings  # noqa: E402
from app.db import get_engine, new_session  # noqa: E402
from app.models import Base, Project, Tag, User  # noqa: E402
from app.services import api_keys as api_key_service  # noqa: E402
from app.services import projects as project_service  # noqa: E402
from app.services import tags as tag_service  # noqa: E402
from app.services import users as user_service  # noqa: E402

pytest_plugins = ["tests.fixtures.cloud", "tests.fixtures.servers"]

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PASSWORD = "correct horse battery"


def _check_services() -> None:
    """In CI the real PostgreSQL and Redis must be used and reachable: fail, never skip."""
    if not IN_CI:
        return
    if not _TEST_DB.startswith("postgresql"):
        raise pytest.UsageError("CI must set POLYTAG_TEST_DATABASE_URL to the PostgreSQL database")
    if not _TEST_BROKER.startswith("redis"):
        raise pytest.UsageError("CI must set POLYTAG_TEST_BROKER_URL to the Redis broker")


def pytest_configure(config: pytest.Config) -> None:
    _check_services()


def _reset_schema() -> None:
    from app.migrate import upgrade

    engine = get_engine()
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
        else:
            for table in reversed(Base.metadata.sorted_tables):
                connection.execute(text(f'DROP TABLE IF EXISTS "{table.name}"'))
            connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
    upgrade()


@pytest.fixture(scope="session", autouse=True)
def database() -> Iterator[None]:
    """The schema, created by the real migrations once per test session."""
    try:
        _reset_schema()
    except Exception as error:  # pragma: no cover - only when the server is down
        raise pytest.UsageError(f"test database unreachable: {error}") from error
    yield
    get_engine().dispose()
    shutil.rmtree(_DATA_DIR, ignore_errors=True)


def truncate_all() -> None:
    """Empty every table (the schema stays)."""
    engine = get_engine()
    tables = [t.name for t in Base.metadata.sorted_tables if inspect(engine).has_table(t.name)]
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            names = ", ".join(f'"{name}"' for name in tables)
            connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for name in reversed(tables):
                connection.execute(text(f'DELETE FROM "{name}"'))


@pytest.fixture(autouse=True)
def _clean_database(database: None) -> Iterator[None]:
    yield
    truncate_all()


@pytest.fixture
def session() -> Iterator[Session]:
    """A database session for arranging and checking rows."""
    with new_session() as db_session:
        yield db_session


@pytest.fixture
def user(session: Session) -> User:
    """An admin account."""
    return user_service.create(
        session=session, email="admin@example.com", password=PASSWORD, is_admin=True
    )


@pytest.fixture
def api_key(session: Session, user: User) -> str:
    """A full API key of `user`."""
    _row, key = api_key_service.create(session=session, user=user, name="tests")
    return key


@pytest.fixture
def client() -> Iterator[TestClient]:
    """An anonymous HTTP client of the app."""
    from app.main import create_app

    with TestClient(create_app()) as test_client:
        yield test_client


@pytest.fixture
def api(client: TestClient, api_key: str) -> TestClient:
    """A client that sends `user`'s API key on every request."""
    client.headers["Authorization"] = f"Bearer {api_key}"
    return client


def sign_in(client: TestClient, email: str = "admin@example.com") -> str:
    """Sign `client` in through the login form; returns the session's CSRF token."""
    import re

    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token, "login page has no CSRF token"
    response = client.post(
        "/login",
        data={"email": email, "password": PASSWORD, "csrf_token": token.group(1)},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    home = client.get("/")
    csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', home.text)
    assert csrf
    return csrf.group(1)


@pytest.fixture
def browser_client(client: TestClient, user: User) -> TestClient:
    """A client signed in with a session cookie, sending the CSRF header like the pages do."""
    client.headers["X-CSRF-Token"] = sign_in(client)
    return client


@pytest.fixture
def project(session: Session, user: User) -> Project:
    """An empty project."""
    return project_service.create(session=session, name="Crops", created_by=user)


@pytest.fixture
def make_tag(session: Session, project: Project):  # type: ignore[no-untyped-def]
    """Factory: `make_tag("weed", hotkey="w")` adds a tag to `project`."""

    def factory(name: str, **fields: object) -> Tag:
        return tag_service.create(session=session, project=project, name=name, **fields)  # type: ignore[arg-type]

    return factory


@pytest.fixture
def data_dir() -> Path:
    """The data dir the app under test uses."""
    return settings.data_dir
