"""The stale-run reaper (STYLE rule 6), run by every worker without Celery beat.

Each worker process starts a daemon thread when it is ready: it reaps once at once and then every
`stale_run_after_s / 4` seconds. Any worker will do, since reaping is a conditional UPDATE that
only ever fails runs whose heartbeat is older than `stale_run_after_s`; so `polytag serve`'s
embedded worker and every production worker keep runs from staying "running" after their worker
died, with no scheduler to deploy. `maintenance.reap_stale_runs` does one pass on demand.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from celery.signals import worker_ready

from app.config import settings
from app.db import session_scope
from app.services import runs as run_service
from worker.celery_app import celery_app

logger = logging.getLogger(__name__)
_started = threading.Event()


def reap_interval_s() -> float:
    """Seconds between two reaper passes."""
    return max(1.0, settings.stale_run_after_s / 4)


@celery_app.task(name="maintenance.reap_stale_runs")
def reap_stale_runs() -> list[int]:
    """Fail the runs whose worker stopped sending heartbeats; returns their ids."""
    with session_scope() as session:
        reaped = run_service.reap_stale_runs(session=session)
    if reaped:
        logger.warning("failed stale runs %s (no heartbeat)", reaped)
    return reaped


def _reap_forever() -> None:
    while True:
        try:
            reap_stale_runs()
        except Exception:  # the next pass tries again; a dead reaper would be worse
            logger.exception("reaping stale runs failed")
        time.sleep(reap_interval_s())


@worker_ready.connect
def start_reaper(sender: Any = None, **_kwargs: Any) -> None:
    """Start this worker's reaper thread (once per process)."""
    if _started.is_set():
        return
    _started.set()
    threading.Thread(target=_reap_forever, name="run-reaper", daemon=True).start()
