"""Request ids, JSON logs and /metrics (app/observability/, app/web/metrics.py)."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from datetime import timedelta
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient
from kombu import Connection
from sqlalchemy.orm import Session

from app.config import settings
from app.models import Project
from app.models.base import utcnow
from app.models.runs import TrainingRun
from app.observability import configure_json_logging, current_request_id, current_task_id, logs
from app.observability.metrics import STATE_COLLECTOR, RunProgress, TrainingRates

METRIC_LINE = re.compile(r"^(\w+)(?:\{(.*)\})? (\S+)$")


def scrape(client: TestClient, **headers: str) -> dict[tuple[str, str], float]:
    """GET /metrics; samples keyed by (name, labels as written)."""
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[tuple[str, str], float] = {}
    for line in response.text.splitlines():
        match = METRIC_LINE.match(line)
        if match and not line.startswith("#"):
            samples[(match.group(1), match.group(2) or "")] = float(match.group(3))
    return samples


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """JSON logging into a buffer, undone afterwards."""
    names = ("", "uvicorn", "uvicorn.error", "uvicorn.access", "celery", "celery.task", "polytag")
    loggers = [logging.getLogger(name) for name in names]
    saved = [(list(lg.handlers), lg.level, lg.propagate) for lg in loggers]
    buffer = io.StringIO()
    configure_json_logging(stream=buffer)
    yield buffer
    for named, (handlers, level, propagate) in zip(loggers, saved, strict=True):
        named.handlers[:] = handlers
        named.setLevel(level)
        named.propagate = propagate


def log_entries(buffer: io.StringIO) -> list[dict[str, object]]:
    """Every line in the buffer, parsed (a line that is not JSON fails the test)."""
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_request_id_is_echoed_or_made(client: TestClient) -> None:
    given = client.get("/healthz", headers={"X-Request-ID": "edge-7f3a:42"})
    assert given.headers["X-Request-ID"] == "edge-7f3a:42"
    made = client.get("/healthz")
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["X-Request-ID"])
    assert client.get("/healthz").headers["X-Request-ID"] != made.headers["X-Request-ID"]


def test_malformed_request_ids_are_replaced(client: TestClient) -> None:
    for bad in ("has spaces", "x" * 129, '{"json":1}'):
        response = client.get("/healthz", headers={"X-Request-ID": bad})
        assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"]), bad


def test_error_responses_carry_the_request_id(client: TestClient) -> None:
    response = client.get("/api/v1/projects", headers={"X-Request-ID": "req-401"})
    assert response.status_code == 401
    assert response.headers["X-Request-ID"] == "req-401"


def test_every_log_line_of_a_request_carries_its_id(json_log: io.StringIO) -> None:
    from app.main import create_app

    app = create_app()

    @app.get("/test-logs")
    def logs_something() -> dict[str, str]:  # a sync route: runs in the thread pool
        logging.getLogger("polytag.test").warning("inside the route", extra={"images": 3})
        return {"ok": "yes"}

    with TestClient(app) as client:
        assert client.get("/test-logs", headers={"X-Request-ID": "req-1"}).status_code == 200
        client.get("/healthz", headers={"X-Request-ID": "req-2"})
    entries = log_entries(json_log)
    inside = [e for e in entries if e["logger"] == "polytag.test"]
    assert inside == [
        {
            "time": inside[0]["time"],
            "level": "warning",
            "logger": "polytag.test",
            "message": "inside the route",
            "request_id": "req-1",
            "images": 3,
        }
    ]
    access = {e["request_id"]: e for e in entries if e["logger"] == "polytag.access"}
    assert access["req-1"]["route"] == "/test-logs"
    assert access["req-1"]["status"] == 200
    assert str(access["req-2"]["message"]).startswith("GET /healthz 200 ")
    assert isinstance(access["req-2"]["duration_ms"], float)


def test_log_lines_outside_requests_have_no_request_id(json_log: io.StringIO) -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("polytag.test").exception("failed")
    (entry,) = log_entries(json_log)
    assert "request_id" not in entry
    assert entry["level"] == "error"
    assert "ValueError: boom" in str(entry["exception"])


def test_create_app_logs_json_in_production_mode(
    monkeypatch: pytest.MonkeyPatch, json_log: io.StringIO
) -> None:
    from app.main import create_app

    monkeypatch.setattr(settings, "log_json", True)
    create_app()
    handlers = [h for h in logging.getLogger().handlers if h.get_name() == "polytag-json"]
    assert len(handlers) == 1, "one JSON handler however often the app is built"
    assert isinstance(handlers[0].formatter, logs.JsonFormatter)
    assert logging.getLogger("uvicorn.error").handlers == []
    assert logging.getLogger("uvicorn.error").propagate


def test_tasks_enqueued_by_a_request_log_its_id() -> None:
    headers: dict[str, object] = {}
    token = logs.request_id_var.set("req-9")
    try:
        logs._add_request_id_header(headers=headers)
    finally:
        logs.request_id_var.reset(token)
    assert headers == {"polytag_request_id": "req-9"}
    task = SimpleNamespace(request=SimpleNamespace(polytag_request_id="req-9"))
    logs._enter_task(task_id="task-1", task=task)
    assert (current_task_id(), current_request_id()) == ("task-1", "req-9")
    logs._leave_task()
    assert (current_task_id(), current_request_id()) == (None, None)


def test_metrics_time_requests_by_route_template(client: TestClient) -> None:
    client.get("/api/v1/projects/123")  # 401: no credentials
    client.get("/api/v1/projects/456")
    client.get("/no/such/page")
    samples = scrape(client)
    count = "polytag_http_request_duration_seconds_count"
    by_template = 'method="GET",route="/api/v1/projects/{project_id}",status="401"'
    assert samples[(count, by_template)] >= 2
    assert samples[(count, 'method="GET",route="<unmatched>",status="404"')] >= 1
    assert not any("123" in labels for _, labels in samples), "raw paths must not be labels"


def test_metrics_count_runs_by_status_and_training_speed(
    client: TestClient, session: Session, project: Project
) -> None:
    STATE_COLLECTOR.rates = TrainingRates()  # forget runs of earlier tests
    now = utcnow()
    running = TrainingRun(
        project_id=project.id,
        status="running",
        step=50,
        started_at=now - timedelta(seconds=10),
        heartbeat_at=now,
        images_per_second=123.5,
    )
    session.add_all([running, TrainingRun(project_id=project.id, status="succeeded")])
    session.commit()
    samples = scrape(client)
    assert samples[("polytag_training_runs", 'status="running"')] == 1
    assert samples[("polytag_training_runs", 'status="succeeded"')] == 1
    assert samples[("polytag_training_runs", 'status="failed"')] == 0
    run = f'run_id="{running.id}"'
    assert samples[("polytag_training_run_step", run)] == 50
    assert samples[("polytag_training_steps_per_second", run)] == pytest.approx(5.0)  # 50 / 10s
    assert samples[("polytag_training_images_per_second", run)] == 123.5
    running.step, running.heartbeat_at = 80, now + timedelta(seconds=5)
    session.commit()
    samples = scrape(client)
    assert samples[("polytag_training_steps_per_second", run)] == pytest.approx(6.0)  # 30 / 5s
    assert samples[("polytag_metrics_source_up", 'source="database"')] == 1


def test_metrics_report_queue_depth(client: TestClient) -> None:
    from worker.tasks.maintenance import ping

    before = scrape(client)[("polytag_queue_depth", 'queue="train"')]
    ping.apply_async(("queued",), queue="train")  # no worker consumes in this test
    try:
        samples = scrape(client)
        assert samples[("polytag_queue_depth", 'queue="train"')] == before + 1
        assert ("polytag_queue_depth", 'queue="default"') in samples
        assert samples[("polytag_metrics_source_up", 'source="broker"')] == 1
    finally:
        with Connection(settings.broker_url) as connection:
            connection.default_channel.queue_purge("train")


def test_metrics_say_when_the_broker_is_down(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "broker_url", "redis://127.0.0.1:1/0")
    samples = scrape(client)
    assert samples[("polytag_metrics_source_up", 'source="broker"')] == 0
    assert not any(name == "polytag_queue_depth" for name, _ in samples)
    assert samples[("polytag_metrics_source_up", 'source="database"')] == 1


def test_metrics_token_is_required_when_set(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "metrics_token", "scrape-secret")
    denied = client.get("/metrics")
    assert denied.status_code == 401
    assert denied.headers["WWW-Authenticate"] == "Bearer"
    assert "POLYTAG_METRICS_TOKEN" in denied.text
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert scrape(client, Authorization="Bearer scrape-secret")


def test_training_rates_follow_heartbeats() -> None:
    start = utcnow()
    rates = TrainingRates()

    def reading(step: int, seconds: float, run_id: int = 1) -> RunProgress:
        return RunProgress(run_id, step, start + timedelta(seconds=seconds), start, None)

    assert rates.update([reading(20, 10)]) == {1: 2.0}  # first sight: average since start
    assert rates.update([reading(50, 20)]) == {1: 3.0}  # then the change between readings
    assert rates.update([reading(50, 20)]) == {1: 3.0}  # no new heartbeat: keep the rate
    assert rates.update([reading(10, 25)]) == {1: 0.4}  # resumed from a checkpoint: average
    assert rates.update([reading(5, 30, run_id=2)]) == {2: 5 / 30}  # run 1 finished: dropped
    assert rates.update([RunProgress(3, 0, None, None, None)]) == {}
