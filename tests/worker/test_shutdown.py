"""A stopping worker hands its long job back to the queue (worker/shutdown.py).

The workers here run the `worker-gpu` command of docker-compose.yml, with a test task standing in
for training (tests/fixtures/stoppable_task.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from celery.exceptions import Reject
from celery.signals import worker_shutting_down

from app.config import settings
from tests.fixtures.deployment import compose_command, start, stop, wait_until
from tests.fixtures.stoppable_task import WORKER_BOOT, deliveries, stoppable
from worker.shutdown import requeue_for_restart, reset_for_tests, worker_stopping


def start_gpu_worker(log: Path, **env: str) -> subprocess.Popen[bytes]:
    """`polytag worker -Q train --concurrency 1 ...` with the test task loaded."""
    command = compose_command("worker-gpu")
    assert command[:3] == ["polytag", "worker", "-Q"]
    return start([sys.executable, "-c", WORKER_BOOT, *command[1:]], log, dict(os.environ, **env))


def test_the_warm_shutdown_signal_sets_the_flag() -> None:
    reset_for_tests()
    assert not worker_stopping()
    worker_shutting_down.send(sender="gpu@test", sig="SIGTERM", how="Warm", exitcode=0)
    try:
        assert worker_stopping()
    finally:
        reset_for_tests()
    with pytest.raises(Reject) as rejected:
        requeue_for_restart()
    assert rejected.value.requeue is True


def test_a_stopped_gpu_worker_requeues_its_job_for_the_next_worker(tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    first = start_gpu_worker(tmp_path / "first.log")
    result = stoppable.apply_async((str(journal),), queue="train")
    try:
        wait_until(lambda: deliveries(journal)[:1] == ["start 1"], 180, "the first delivery")
    finally:
        first_exit = stop(first)  # SIGTERM while the job runs, as `docker compose stop` does
    assert first_exit == 0, (tmp_path / "first.log").read_text()[-3000:]
    assert deliveries(journal)[:2] == ["start 1", "requeued"]

    second = start_gpu_worker(tmp_path / "second.log")
    try:
        assert result.get(timeout=180).startswith("done after")
    finally:
        assert stop(second) == 0
    lines = deliveries(journal)
    assert lines[-1] == "done"
    assert lines.count("done") == 1, lines  # the job ran to completion exactly once


@pytest.mark.skipif(
    not settings.broker_url.startswith("redis"),
    reason="only Redis hands back the jobs of a killed worker (POLYTAG_TEST_BROKER_URL)",
)
def test_a_killed_workers_job_comes_back_after_the_visibility_timeout(tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    first = start_gpu_worker(tmp_path / "first.log")
    result = stoppable.apply_async((str(journal),), queue="train")
    try:
        wait_until(lambda: deliveries(journal)[:1] == ["start 1"], 180, "the first delivery")
    finally:
        first.send_signal(signal.SIGKILL)  # no warm shutdown: the job stays unacknowledged
        first.wait()
    # A worker that starts later returns jobs delivered longer ago than its visibility timeout.
    second = start_gpu_worker(tmp_path / "second.log", POLYTAG_BROKER_VISIBILITY_TIMEOUT_S="1")
    try:
        assert result.get(timeout=180) == "done after 2 deliveries"
    finally:
        assert stop(second) == 0
    assert deliveries(journal) == ["start 1", "start 2", "done"]
