"""Migrations run up, down and up again, and agree with the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from app.db import get_engine
from app.migrate import downgrade, upgrade
from app.models import Base


def test_upgrade_downgrade_upgrade() -> None:
    engine = get_engine()
    downgrade()
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade()
    tables = set(inspect(engine).get_table_names())
    assert {t.name for t in Base.metadata.sorted_tables} <= tables


def test_models_and_migrations_agree() -> None:
    with get_engine().connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "render_as_batch": True}
        )
        diff = compare_metadata(context, Base.metadata)
    assert diff == [], f"models differ from migrations: {diff}"
