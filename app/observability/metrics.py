"""Prometheus metrics: request latency, and state read at scrape time.

`StateCollector` reads, on each scrape, the depth of each Celery queue from the broker, and
training runs by status and the speed of running runs from the database.
`render_metrics()` serves them all for /metrics.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import NamedTuple

from prometheus_client import CollectorRegistry, Histogram, ProcessCollector
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from app.config import settings
from app.db import new_session
from app.models.runs import RUN_STATUSES, TrainingRun

logger = logging.getLogger("polytag.observability")

REGISTRY = CollectorRegistry()
"""Polytag's own registry (not prometheus_client's global one, so tests can build many apps)."""

REQUEST_LATENCY = Histogram(
    "polytag_http_request_duration_seconds",
    "HTTP request latency by method, route template and status code",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
    registry=REGISTRY,
)


class RunProgress(NamedTuple):
    """One running run as the database has it."""

    run_id: int
    step: int
    heartbeat_at: datetime | None
    started_at: datetime | None
    images_per_second: float | None


class TrainingRates:
    """Steps per second of running runs, from successive (step, heartbeat_at) readings.

    The training task writes `training_run.step` with each heartbeat, so two readings a scrape
    apart give the current rate. A run read for the first time, or whose step went back (it
    resumed from a checkpoint), gets its average since `started_at` until the next reading.
    """

    def __init__(self) -> None:
        self._last: dict[int, tuple[int, datetime, float | None]] = {}
        self._lock = threading.Lock()

    def update(self, runs: Iterable[RunProgress]) -> dict[int, float]:
        """Take the latest readings (runs not in them are forgotten); the rate of each run."""
        rates: dict[int, float] = {}
        with self._lock:
            readings: dict[int, tuple[int, datetime, float | None]] = {}
            for run in runs:
                if run.heartbeat_at is None:
                    continue
                rate = self._rate(run, run.heartbeat_at)
                readings[run.run_id] = (run.step, run.heartbeat_at, rate)
                if rate is not None:
                    rates[run.run_id] = rate
            self._last = readings
        return rates

    def _rate(self, run: RunProgress, heartbeat_at: datetime) -> float | None:
        previous = self._last.get(run.run_id)
        if previous is not None:
            step, at, rate = previous
            if (step, at) == (run.step, heartbeat_at):
                return rate  # no heartbeat since the last scrape
            seconds = (heartbeat_at - at).total_seconds()
            if seconds > 0 and run.step >= step:
                return (run.step - step) / seconds
        if run.started_at is not None:
            seconds = (heartbeat_at - run.started_at).total_seconds()
            if seconds > 0:
                return run.step / seconds
        return None


def celery_queue_names() -> list[str]:
    """The queues the Celery app declares ("default", "train")."""
    from worker.celery_app import celery_app  # the worker package imports this module

    return [queue.name for queue in celery_app.conf.task_queues or ()]


def queue_depths(broker_url: str, queues: Iterable[str]) -> dict[str, int]:
    """Messages waiting in each queue (Redis: list length; SQLAlchemy: visible rows)."""
    from kombu import Connection
    from kombu.exceptions import ChannelError

    depths: dict[str, int] = {}
    with Connection(broker_url, connect_timeout=3) as connection:
        # Bounded: kombu would otherwise retry a dead broker for as long as the scrape waits.
        connection.ensure_connection(max_retries=1, timeout=3)
        channel = connection.default_channel
        for queue in queues:
            try:
                depths[queue] = int(channel.queue_declare(queue=queue, passive=True).message_count)
            except ChannelError:
                depths[queue] = 0  # Redis has no key for an empty queue
    return depths


def read_runs() -> tuple[dict[str, int], list[RunProgress]]:
    """Run counts by status (every status present), and the progress of running runs."""
    with new_session() as session:
        counts = dict.fromkeys(RUN_STATUSES, 0)
        grouped = select(TrainingRun.status, func.count()).group_by(TrainingRun.status)
        for status, count in session.execute(grouped):
            counts[status] = count
        columns = (
            TrainingRun.id,
            TrainingRun.step,
            TrainingRun.heartbeat_at,
            TrainingRun.started_at,
            TrainingRun.images_per_second,
        )
        rows = session.execute(select(*columns).where(TrainingRun.status == "running"))
        return counts, [RunProgress(*row) for row in rows]


class StateCollector(Collector):
    """Metrics read when Prometheus scrapes: queue depth, runs by status, training speed."""

    def __init__(self) -> None:
        self.rates = TrainingRates()

    def collect(self) -> Iterator[Metric]:
        """Read the broker and the database; a source that fails is reported down, not raised."""
        up = GaugeMetricFamily(
            "polytag_metrics_source_up", "1 when the source answered this scrape", labels=["source"]
        )
        depth = GaugeMetricFamily(
            "polytag_queue_depth", "Messages waiting in each Celery queue", labels=["queue"]
        )
        try:
            for queue, count in queue_depths(settings.broker_url, celery_queue_names()).items():
                depth.add_metric([queue], count)
            up.add_metric(["broker"], 1)
        except Exception:
            logger.warning("metrics: the broker did not answer", exc_info=True)
            up.add_metric(["broker"], 0)
        yield depth
        yield from self._runs(up)
        yield up

    def _runs(self, up: GaugeMetricFamily) -> Iterator[Metric]:
        by_status = GaugeMetricFamily(
            "polytag_training_runs", "Training runs by status", labels=["status"]
        )
        steps = GaugeMetricFamily(
            "polytag_training_run_step", "Current step of each running run", labels=["run_id"]
        )
        speed = GaugeMetricFamily(
            "polytag_training_steps_per_second",
            "Optimizer steps per second of each running run (from its heartbeats)",
            labels=["run_id"],
        )
        images = GaugeMetricFamily(
            "polytag_training_images_per_second",
            "Training images per second of each running run, as its worker reports it",
            labels=["run_id"],
        )
        try:
            counts, running = read_runs()
        except Exception:
            logger.warning("metrics: the database did not answer", exc_info=True)
            up.add_metric(["database"], 0)
            return
        up.add_metric(["database"], 1)
        for status, count in counts.items():
            by_status.add_metric([status], count)
        for run_id, rate in self.rates.update(running).items():
            speed.add_metric([str(run_id)], rate)
        for run in running:
            steps.add_metric([str(run.run_id)], run.step)
            if run.images_per_second is not None:
                images.add_metric([str(run.run_id)], run.images_per_second)
        yield from (by_status, steps, speed, images)


STATE_COLLECTOR = StateCollector()
REGISTRY.register(STATE_COLLECTOR)
ProcessCollector(registry=REGISTRY)


def render_metrics() -> tuple[bytes, str]:
    """The Prometheus text exposition of every Polytag metric, and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
