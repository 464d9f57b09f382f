"""Run Alembic migrations from code (the CLI and the tests use this)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from app.config import settings
from app.templating import ROOT


def alembic_config(database_url: str | None = None) -> Config:
    """Alembic config for this checkout, pointed at `database_url` (default: settings)."""
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = database_url or settings.database_url
    config.attributes["configure_logging"] = False
    return config


def upgrade(database_url: str | None = None, revision: str = "head") -> None:
    """Apply migrations up to `revision`."""
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str | None = None, revision: str = "base") -> None:
    """Revert migrations down to `revision`."""
    command.downgrade(alembic_config(database_url), revision)
