"""One settings object for the api, the worker, Alembic and the tests (env prefix POLYTAG_)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

EXAMPLE_SECRET = "change-me"


class ConfigurationError(RuntimeError):
    """The settings cannot work as given; the message says which variable to change."""


class Settings(BaseSettings):
    """Polytag settings; every field can be set as POLYTAG_<NAME> in the environment or `.env`."""

    model_config = SettingsConfigDict(env_prefix="POLYTAG_", env_file=".env", extra="ignore")

    env: Literal["development", "production"] = "development"
    data_dir: Path = Path("polytag-data")
    database_url: str = ""
    broker_url: str = ""
    result_backend: str = ""
    secret_key: str = EXAMPLE_SECRET
    base_url: str = "http://127.0.0.1:8000"
    host: str = "127.0.0.1"
    port: int = 8000
    log_json: bool = False
    # Bearer token that /metrics requires when set (Prometheus `authorization` credentials).
    metrics_token: str = ""
    session_max_age_s: int = 14 * 24 * 3600

    # Blob storage for Polytag's own files.
    storage_backend: Literal["local", "s3", "azure"] = "local"
    s3_bucket: str = ""
    s3_prefix: str = ""
    s3_region: str = ""
    s3_endpoint_url: str = ""
    s3_access_key_id: str = ""
    s3_secret_access_key: str = ""
    azure_container: str = ""
    azure_prefix: str = ""
    azure_connection_string: str = ""
    azure_account_url: str = ""
    azure_account_key: str = ""
    azure_sas_token: str = ""

    # Upload limits.
    max_upload_bytes: int = 50 * 1024 * 1024
    max_zip_bytes: int = 2 * 1024 * 1024 * 1024
    max_zip_uncompressed_bytes: int = 4 * 1024 * 1024 * 1024
    max_zip_members: int = 100_000
    max_image_pixels: int = 89_478_485
    thumbnail_size: int = 256

    # Training and jobs.
    weights_dir: Path | None = None
    heartbeat_interval_s: float = 5.0
    stale_run_after_s: float = 120.0
    broker_visibility_timeout_s: int = 7 * 24 * 3600
    train_time_limit_s: int = 3 * 24 * 3600
    predict_max_images: int = 64

    worker_concurrency: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _fill_defaults(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.data_dir / 'polytag.db').as_posix()}"
        if not self.broker_url:
            self.broker_url = f"sqla+sqlite:///{(self.data_dir / 'broker.db').as_posix()}"
        if not self.result_backend:
            if self.broker_url.startswith(("redis://", "rediss://")):
                self.result_backend = self.broker_url
            else:
                self.result_backend = f"db+sqlite:///{(self.data_dir / 'results.db').as_posix()}"
        return self

    @property
    def is_sqlite(self) -> bool:
        """True when the database is a SQLite file (embedded mode)."""
        return self.database_url.startswith("sqlite")

    def check_production(self) -> None:
        """Refuse to run in production with the example secret or an embedded database."""
        if self.env != "production":
            return
        if self.secret_key in ("", EXAMPLE_SECRET) or len(self.secret_key) < 32:
            raise ConfigurationError(
                "POLYTAG_SECRET_KEY must be set to a random value of at least 32 characters "
                "in production (the example secret is refused)"
            )
        # Production means several processes (api, workers) on several hosts or containers:
        # a SQLite file cannot be shared between them safely.
        if self.is_sqlite:
            raise ConfigurationError(
                "POLYTAG_ENV=production needs PostgreSQL: set POLYTAG_DATABASE_URL to "
                "postgresql+psycopg://USER:PASSWORD@HOST/DB (SQLite is for embedded mode; "
                "unset POLYTAG_ENV to run embedded)"
            )
        if self.broker_url.startswith("sqla+sqlite"):
            raise ConfigurationError(
                "POLYTAG_ENV=production needs a Redis broker: set POLYTAG_BROKER_URL to "
                "redis://HOST:6379/0 (the SQLite broker is for embedded mode)"
            )


settings = Settings()
