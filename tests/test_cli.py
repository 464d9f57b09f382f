"""The `polytag` command line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy.orm import Session

from app.cli import main
from app.services import users as user_service
from tests.fixtures.servers import free_port, wait_for_port


def test_create_user(session: Session, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["create-user", "--email", "ops@example.com", "--password", "pw-long-enough",
                 "--admin"]) == 0
    assert "created admin ops@example.com" in capsys.readouterr().out
    assert main(["create-user", "--email", "ops@example.com", "--password", "pw-long-enough"]) == 1
    assert "already exists" in capsys.readouterr().err
    assert main(["create-user", "--email", "x@example.com", "--password", "short"]) == 1
    assert [u.email for u in user_service.get_all(session=session)] == ["ops@example.com"]


@pytest.mark.slow
def test_serve_embedded_starts_a_worker_and_ctrl_c_stops_both(tmp_path: Path) -> None:
    """`polytag serve` on a fresh data dir: migrates, serves, runs a worker, stops on SIGINT."""
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("POLYTAG_")}
    env.update({"POLYTAG_DATA_DIR": str(tmp_path / "data"), "PYTHONUNBUFFERED": "1"})
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        wait_for_port(port, timeout=60)
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").json() == {"status": "ok"}
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz")
        assert ready.status_code == 200, ready.text
        assert (tmp_path / "data" / "polytag.db").exists()
        children = subprocess.run(
            ["pgrep", "-P", str(process.pid), "-f", "app.cli worker"],
            capture_output=True, text=True,
        ).stdout.split()
        assert len(children) == 1, "serve starts exactly one worker child in embedded mode"
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 0, output.decode()
    time.sleep(0.5)
    alive = subprocess.run(["ps", "-p", children[0]], capture_output=True).returncode == 0
    assert not alive, "the worker child must stop with serve"
