"""The commands the containers run, run here as processes: migrate, serve, a worker.

The commands are read from docker-compose.yml. With POLYTAG_TEST_DATABASE_URL and
POLYTAG_TEST_BROKER_URL pointing at PostgreSQL and Redis (CI does), the api runs with
POLYTAG_ENV=production exactly as in a container; on the SQLite default it runs in development
mode with JSON logs, since production mode refuses SQLite (tested below).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import httpx

from app.config import settings
from tests.fixtures.deployment import compose_command, start, stop, wait_until
from tests.fixtures.servers import free_port, wait_for_port

POLYTAG = str(Path(sys.executable).with_name("polytag"))
PRODUCTION_READY = settings.database_url.startswith("postgresql") and (
    settings.broker_url.startswith("redis")
)


def executable(command: list[str]) -> list[str]:
    """A compose command with `polytag` resolved to this environment's console script."""
    assert command[0] == "polytag"
    return [POLYTAG, *command[1:]]


def container_env(**extra: str) -> dict[str, str]:
    """The environment of the app containers: production where the servers allow it."""
    env = dict(os.environ, **extra)
    if PRODUCTION_READY:
        env.update(POLYTAG_ENV="production", POLYTAG_SECRET_KEY=secrets.token_urlsafe(48))
    else:
        env.update(POLYTAG_ENV="development", POLYTAG_LOG_JSON="true")
    return env


def json_lines(log: Path) -> list[dict[str, object]]:
    """The JSON log entries in a process log (banners and prints are not JSON)."""
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


def refused(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the api container's command with `env`; it must stop before serving anything."""
    return subprocess.run(
        executable(compose_command("api")), env=env, capture_output=True, text=True, timeout=120
    )


def test_production_refuses_the_example_secret() -> None:
    result = refused(dict(os.environ, POLYTAG_ENV="production", POLYTAG_SECRET_KEY="change-me"))
    assert result.returncode == 2
    assert "POLYTAG_SECRET_KEY" in result.stderr
    assert "example secret is refused" in result.stderr
    assert "Traceback" not in result.stderr  # one clear line, not a stack


def test_production_refuses_an_embedded_database(tmp_path: Path) -> None:
    env = dict(
        os.environ,
        POLYTAG_ENV="production",
        POLYTAG_SECRET_KEY=secrets.token_urlsafe(48),
        POLYTAG_DATABASE_URL=f"sqlite:///{tmp_path / 'polytag.db'}",
    )
    result = refused(env)
    assert result.returncode == 2
    assert "needs PostgreSQL" in result.stderr and "POLYTAG_DATABASE_URL" in result.stderr


def test_production_refuses_the_embedded_broker(tmp_path: Path) -> None:
    env = dict(
        os.environ,
        POLYTAG_ENV="production",
        POLYTAG_SECRET_KEY=secrets.token_urlsafe(48),
        POLYTAG_DATABASE_URL="postgresql+psycopg://polytag@127.0.0.1:1/polytag",
        POLYTAG_BROKER_URL=f"sqla+sqlite:///{tmp_path / 'broker.db'}",
    )
    result = refused(env)
    assert result.returncode == 2
    assert "needs a Redis broker" in result.stderr


def _state_and_parent(stat: Path) -> tuple[str, int] | None:
    try:
        fields = stat.read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None  # the process ended while we looked
    return fields[0], int(fields[1])


def children_of(pid: int) -> list[int]:
    """Ids of the live processes whose parent is `pid` (from /proc)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        found = _state_and_parent(stat)
        if found and found[1] == pid and found[0] != "Z":
            children.append(int(stat.parent.name))
    return children


def running(pid: int) -> bool:
    """Whether process `pid` exists and is not a zombie."""
    found = _state_and_parent(Path(f"/proc/{pid}/stat"))
    return found is not None and found[0] != "Z"


def test_serve_stops_its_worker_child_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    command = [POLYTAG, "serve", "--worker", "--no-migrate", "--port", str(port)]
    serve = start(command, tmp_path / "serve.log", dict(os.environ))
    try:
        wait_for_port(port, timeout=120)
        wait_until(lambda: bool(children_of(serve.pid)), 60, "the worker child")
        (child,) = children_of(serve.pid)
    finally:
        serve_exit = stop(serve)
    orphaned = running(child)
    if orphaned:
        os.kill(child, signal.SIGKILL)  # do not leave it consuming the test queues
    assert not orphaned, "the worker child outlived `polytag serve`"
    assert serve_exit == 0, (tmp_path / "serve.log").read_text()[-3000:]


def test_the_container_commands_run_a_working_polytag(tmp_path: Path) -> None:
    from worker.tasks.maintenance import ping

    env = container_env()
    migrate = subprocess.run(
        executable(compose_command("migrate")), env=env, capture_output=True, text=True, timeout=300
    )
    assert migrate.returncode == 0, migrate.stderr
    assert "database is at the latest schema" in migrate.stdout

    port = free_port()
    api_log, worker_log = tmp_path / "api.log", tmp_path / "worker.log"
    # The api's exact command, moved to a free port on the loopback interface.
    api_command = [*executable(compose_command("api")), "--host", "127.0.0.1", "--port", str(port)]
    api = start(api_command, api_log, env)
    worker = start(executable(compose_command("worker")), worker_log, env)
    try:
        wait_for_port(port, timeout=120)
        base = f"http://127.0.0.1:{port}"
        health = httpx.get(f"{base}/healthz", headers={"X-Request-ID": "compose-check-1"})
        assert health.status_code == 200
        assert health.headers["X-Request-ID"] == "compose-check-1"
        ready = httpx.get(f"{base}/readyz", timeout=30)
        assert (ready.status_code, ready.json()) == (200, {"status": "ok"}), ready.text
        metrics = httpx.get(f"{base}/metrics", timeout=30)
        assert metrics.status_code == 200
        for name in (
            "polytag_http_request_duration_seconds_bucket",
            'polytag_queue_depth{queue="default"}',
            'polytag_training_runs{status="running"}',
            "polytag_training_steps_per_second",
        ):
            assert name in metrics.text, name
        token = uuid.uuid4().hex
        assert ping.delay(token).get(timeout=120) == token  # through the broker and the worker
        wait_until(lambda: " ready." in worker_log.read_text(), 60, "the worker banner")
    finally:
        worker_exit = stop(worker)
        api_exit = stop(api)
    assert worker_exit == 0, worker_log.read_text()[-3000:]
    assert api_exit == 0, api_log.read_text()[-3000:]

    access = [e for e in json_lines(api_log) if e.get("logger") == "polytag.access"]
    assert any(
        e.get("request_id") == "compose-check-1" and e.get("route") == "/healthz" for e in access
    )
    ping_lines = [e for e in json_lines(worker_log) if "maintenance.ping" in str(e["message"])]
    assert any(e.get("task_id") and "succeeded" in str(e["message"]) for e in ping_lines)
