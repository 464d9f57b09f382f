"""Enqueue Celery tasks by name, so services never import task modules (which import services)."""

from __future__ import annotations

from typing import Any


def enqueue(task_name: str, *args: Any, queue: str = "default") -> str:
    """Send a task to its queue; call only after the transaction that it depends on committed."""
    from worker.celery_app import celery_app

    result = celery_app.send_task(task_name, args=list(args), queue=queue)
    return str(result.id)
