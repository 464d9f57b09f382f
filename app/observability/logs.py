"""JSON logs that carry the current request id (api) or task id (worker).

`configure_json_logging()` sends every record to stderr as one JSON object per line.
`create_app()` turns it on when `POLYTAG_LOG_JSON` is true or `POLYTAG_ENV=production`; the worker
does the same through Celery's `setup_logging` signal (`connect_celery_signals()`), which also
carries the id of the request that enqueued a task into the task's log lines.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO

from app.config import settings

CELERY_REQUEST_ID_HEADER = "polytag_request_id"
HANDLER_NAME = "polytag-json"

request_id_var: ContextVar[str | None] = ContextVar("polytag_request_id", default=None)
"""The id of the request being served (set by RequestContextMiddleware) or of the request that
enqueued the running task."""
task_id_var: ContextVar[str | None] = ContextVar("polytag_task_id", default=None)


def current_request_id() -> str | None:
    """The id of the request (or of the request that enqueued the task) being handled."""
    return request_id_var.get()


def current_task_id() -> str | None:
    """The id of the Celery task running in this thread, if any."""
    return task_id_var.get()


def json_logs_wanted() -> bool:
    """Whether logs should be JSON: `POLYTAG_LOG_JSON=true` or production mode."""
    return settings.log_json or settings.env == "production"


# Attributes every LogRecord has; anything else on a record came from `extra=` and is logged.
_RECORD_FIELDS = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's ANSI-coloured duplicate of the message
}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, ids, extras, exception."""

    def format(self, record: logging.LogRecord) -> str:
        """Render `record` as a single line of JSON."""
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        task_id = task_id_var.get()
        if task_id:
            entry["task_id"] = task_id
        for key, value in record.__dict__.items():
            if key not in _RECORD_FIELDS and not key.startswith("_") and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_json_logging(level: int | str = logging.INFO, stream: TextIO | None = None) -> None:
    """Route all logging (ours, uvicorn's, Celery's) to one JSON handler on the root logger."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == HANDLER_NAME:  # idempotent: create_app may run more than once
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(HANDLER_NAME)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level)
    # uvicorn and Celery attach their own plain-text handlers; hand their records to ours.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "celery", "celery.task"):
        named = logging.getLogger(name)
        named.handlers.clear()
        named.propagate = True
    # polytag.access replaces uvicorn's access line (it has the route, latency and request id).
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)


def connect_celery_signals() -> None:
    """Worker side: JSON logs when wanted, task ids (and the enqueuing request's id) in logs."""
    from celery import signals

    if json_logs_wanted():
        # Any receiver of setup_logging makes Celery leave logging alone; ours does it in JSON.
        signals.setup_logging.connect(_setup_worker_logging, weak=False)
    signals.before_task_publish.connect(_add_request_id_header, weak=False)
    signals.task_prerun.connect(_enter_task, weak=False)
    signals.task_postrun.connect(_leave_task, weak=False)


def _setup_worker_logging(loglevel: int | str | None = None, **_kwargs: Any) -> None:
    configure_json_logging(loglevel or logging.INFO)


def _add_request_id_header(headers: dict[str, Any] | None = None, **_kwargs: Any) -> None:
    request_id = request_id_var.get()
    if request_id and headers is not None:
        headers.setdefault(CELERY_REQUEST_ID_HEADER, request_id)


def _enter_task(task_id: str | None = None, task: Any = None, **_kwargs: Any) -> None:
    task_id_var.set(task_id)
    request = getattr(task, "request", None)
    request_id_var.set(getattr(request, CELERY_REQUEST_ID_HEADER, None) if request else None)


def _leave_task(**_kwargs: Any) -> None:
    # Pool threads are reused, so the ids are cleared rather than left for the next task.
    task_id_var.set(None)
    request_id_var.set(None)
