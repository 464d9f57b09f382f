"""A task round-trips through the real broker and a real worker process."""

from __future__ import annotations

import subprocess
import uuid

from worker.tasks.maintenance import ping


def test_ping_round_trips_through_the_broker(celery_worker: subprocess.Popen[bytes]) -> None:
    token = uuid.uuid4().hex
    result = ping.delay(token)
    assert result.get(timeout=60) == token
    assert celery_worker.poll() is None
