"""The Celery app, configured from settings for long GPU jobs (STYLE rule 5)."""

from __future__ import annotations

from celery import Celery
from kombu import Queue

from app.config import settings
from app.observability import connect_celery_signals


def _task_modules() -> list[str]:
    """Every module under worker/tasks: adding a task module needs no registration."""
    import pkgutil

    import worker.tasks

    return [f"worker.tasks.{m.name}" for m in pkgutil.iter_modules(worker.tasks.__path__)]


def broker_transport_options(broker_url: str) -> dict[str, object]:
    """Transport options: a visibility timeout longer than the longest run, where it applies."""
    if broker_url.startswith(("redis://", "rediss://")):
        return {"visibility_timeout": settings.broker_visibility_timeout_s}
    return {}


def create_celery() -> Celery:
    """Build the Celery app from the current settings."""
    broker_url = settings.broker_url
    if broker_url.startswith("sqla+sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = Celery(
        "polytag", broker=broker_url, backend=settings.result_backend, include=_task_modules()
    )
    app.conf.update(
        task_queues=[Queue("default"), Queue("train")],
        task_default_queue="default",
        task_routes={"worker.tasks.train.*": {"queue": "train"}},
        # A job is acknowledged only when it finishes, and re-queued if its worker dies.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_transport_options=broker_transport_options(broker_url),
        broker_connection_retry_on_startup=True,
        task_time_limit=settings.train_time_limit_s,
        task_soft_time_limit=settings.train_time_limit_s - 60,
        task_serializer="json",
        accept_content=["json"],
        # Results are kept only for the few tasks that ask (ping); state lives in the database.
        task_ignore_result=True,
        result_expires=3600,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        timezone="UTC",
        enable_utc=True,
    )
    return app


celery_app = create_celery()
# JSON logs in production, task and request ids in log lines (app/observability/logs.py).
connect_celery_signals()
