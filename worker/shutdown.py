"""A worker's warm shutdown as a flag that long tasks poll.

`docker compose stop` (or `polytag serve` stopping its worker child) sends SIGTERM, which Celery
turns into a warm shutdown: take no new messages, wait for running tasks. A training run can take
days, so waiting is no answer; instead the training task polls `worker_stopping()` with its
cancel check and, when it turns true, calls `requeue_for_restart()`. With `task_acks_late` the
message was never acknowledged, so rejecting it with `requeue=True` puts it back on the queue at
once; the next worker to start (or this one, restarted) receives it again and resumes the run
from its `last` checkpoint.

The flag lives in shared memory created when this module is imported, which happens in the
worker's main process before it forks its pool (Celery imports task modules first): the main
process sets it in its SIGTERM handler and the `prefork` children see it, as do tasks of the
`solo` pool (embedded mode) and the `threads` pool.
"""

from __future__ import annotations

import multiprocessing
from typing import Any, NoReturn

from celery.exceptions import Reject
from celery.signals import worker_shutting_down

# One shared byte, no lock: written once from a signal handler, read by every pool process.
_stop_requested = multiprocessing.RawValue("b", 0)


@worker_shutting_down.connect
def _on_worker_shutting_down(**_kwargs: Any) -> None:
    _stop_requested.value = 1


def worker_stopping() -> bool:
    """Whether this worker was asked to shut down (cheap: call it every step)."""
    return bool(_stop_requested.value)


def requeue_for_restart(reason: str = "the worker is shutting down") -> NoReturn:
    """Give the current message back to the broker so another worker start picks it up again."""
    raise Reject(f"{reason}; requeued to resume from the last checkpoint", requeue=True)


def reset_for_tests() -> None:
    """Clear the flag (tests that fake a shutdown in-process)."""
    _stop_requested.value = 0
