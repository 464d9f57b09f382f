"""Production telemetry: JSON logs with request and task ids, and Prometheus metrics.

- `logs`: JSON log lines, the current request and task ids, the worker's logging set-up.
- `middleware`: `X-Request-ID` in and out, access log, request latency by route template.
- `metrics`: the registry /metrics serves, with queue depth, runs by status and training speed
  read at scrape time.
"""

from app.observability.logs import (
    configure_json_logging,
    connect_celery_signals,
    current_request_id,
    current_task_id,
    json_logs_wanted,
)
from app.observability.metrics import render_metrics
from app.observability.middleware import RequestContextMiddleware

__all__ = [
    "RequestContextMiddleware",
    "configure_json_logging",
    "connect_celery_signals",
    "current_request_id",
    "current_task_id",
    "json_logs_wanted",
    "render_metrics",
]
