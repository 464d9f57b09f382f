"""/api/v1/projects/{project_id}/runs and the live event stream /api/v1/runs/{run_id}/events."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from app.db import SessionDep, new_session
from app.deps import CurrentUser, ProjectDep
from app.errors import NotFound
from app.schemas.runs import CheckpointRead, LogRead, MetricRead, RunDetail, RunRead, RunStart
from app.services import runs as run_service
from app.services import workflows as workflow_service

router = APIRouter(tags=["runs"])
RUN = "/projects/{project_id}/runs/{run_id}"
# Seconds between two database polls of an event stream, and between keep-alive comments.
POLL_S = 1.0
KEEPALIVE_S = 15.0


@router.get("/projects/{project_id}/runs", response_model=list[RunRead])
def list_runs(project: ProjectDep, session: SessionDep) -> list[RunRead]:
    """The project's runs, newest first."""
    return [RunRead.from_run(run) for run in run_service.get_all(session=session, project=project)]


@router.post(
    "/projects/{project_id}/runs", response_model=RunDetail, status_code=status.HTTP_201_CREATED
)
def start_run(
    project: ProjectDep, body: RunStart, session: SessionDep, user: CurrentUser
) -> RunDetail:
    """Freeze a workflow and its dataset into a run and queue it for training."""
    workflow = workflow_service.get(session=session, project=project, workflow_id=body.workflow_id)
    run = run_service.start_run(
        session=session, project=project, workflow=workflow, user=user, name=body.name
    )
    return RunDetail.from_run(run)


@router.get(RUN, response_model=RunDetail)
def read_run(project: ProjectDep, run_id: int, session: SessionDep) -> RunDetail:
    """One run with its frozen configuration."""
    return RunDetail.from_run(run_service.get(session=session, project=project, run_id=run_id))


@router.post(RUN + "/cancel", response_model=RunRead)
def cancel_run(project: ProjectDep, run_id: int, session: SessionDep, user: CurrentUser) -> RunRead:
    """Cancel a queued run, or stop a running one at its next step."""
    run = run_service.get(session=session, project=project, run_id=run_id)
    return RunRead.from_run(run_service.cancel(session=session, run=run, user=user))


@router.delete(RUN, status_code=status.HTTP_204_NO_CONTENT)
def delete_run(project: ProjectDep, run_id: int, session: SessionDep) -> None:
    """Delete a finished run and its files."""
    run = run_service.get(session=session, project=project, run_id=run_id)
    run_service.delete(session=session, run=run)


@router.get(RUN + "/metrics", response_model=list[MetricRead])
def run_metrics(
    project: ProjectDep,
    run_id: int,
    session: SessionDep,
    since_step: int | None = None,
    after_id: int | None = None,
    name: Annotated[list[str] | None, Query()] = None,
    split: str | None = None,
) -> list[MetricRead]:
    """Metric rows after a step (or a row id), optionally only some names or one split."""
    run = run_service.get(session=session, project=project, run_id=run_id)
    rows = run_service.get_metrics(
        session=session, run=run, since_step=since_step, after_id=after_id, names=name or (),
        split=split,
    )  # fmt: skip
    return [MetricRead.model_validate(row) for row in rows]


@router.get(RUN + "/logs", response_model=list[LogRead])
def run_logs(
    project: ProjectDep, run_id: int, session: SessionDep, after_id: int = 0, limit: int = 1000
) -> list[LogRead]:
    """Log lines after row `after_id`, oldest first."""
    run = run_service.get(session=session, project=project, run_id=run_id)
    rows = run_service.get_logs(session=session, run=run, after_id=after_id, limit=limit)
    return [LogRead.model_validate(row) for row in rows]


@router.get(RUN + "/checkpoints", response_model=list[CheckpointRead])
def run_checkpoints(project: ProjectDep, run_id: int, session: SessionDep) -> list[CheckpointRead]:
    """The run's best and last checkpoints with their metrics."""
    run = run_service.get(session=session, project=project, run_id=run_id)
    return [
        CheckpointRead.model_validate(row)
        for row in run_service.get_checkpoints(session=session, run=run)
    ]


@router.get("/runs/{run_id}/events", response_class=StreamingResponse)
def run_events(
    run_id: int,
    request: Request,
    session: SessionDep,
    _user: CurrentUser,
    after_metric: int = 0,
    after_log: int = 0,
) -> StreamingResponse:
    """Server-sent events of a run, read from the database: `metrics`, `log`, `status`,
    `checkpoints`, and `end` once the run has finished (the stream then closes).

    Event ids are `<metric id>:<log id>` cursors; a reconnecting EventSource sends the last one
    back as Last-Event-ID and continues where it left off.
    """
    run_service.get_by_id(session=session, run_id=run_id)
    session.close()  # the stream polls with sessions of its own; hold no connection meanwhile
    cursor = _parse_cursor(request.headers.get("last-event-id"))
    if cursor is not None:
        after_metric, after_log = cursor
    return StreamingResponse(
        _event_stream(request, run_id, after_metric, after_log),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _parse_cursor(value: str | None) -> tuple[int, int] | None:
    if not value:
        return None
    metric, _, log = value.partition(":")
    try:
        return int(metric), int(log or 0)
    except ValueError:
        return None


def _message(event: str, data: Any, event_id: str | None = None) -> str:
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def _json(schema: type[BaseModel], row: object) -> dict[str, Any]:
    return schema.model_validate(row).model_dump(mode="json")


def _poll(run_id: int, after_metric: int, after_log: int) -> dict[str, Any] | None:
    """One database poll, converted to JSON-ready values while the session is open."""
    with new_session() as session:
        try:
            events = run_service.poll_events(
                session=session, run_id=run_id, after_metric_id=after_metric,
                after_log_id=after_log,
            )  # fmt: skip
        except NotFound:
            return None
        return {
            "run": RunRead.from_run(events.run).model_dump(mode="json"),
            "metrics": [_json(MetricRead, row) for row in events.metrics],
            "logs": [_json(LogRead, row) for row in events.logs],
            "checkpoints": [_json(CheckpointRead, row) for row in events.checkpoints],
            "finished": events.finished,
        }


# Fields of a run that change on their own every poll and so do not make a status event.
_CLOCK_FIELDS = ("duration_seconds", "eta_seconds", "heartbeat_at")


async def _event_stream(
    request: Request, run_id: int, after_metric: int, after_log: int
) -> AsyncIterator[str]:
    last_status: dict[str, Any] | None = None
    last_checkpoints: list[Any] | None = None
    quiet_since = asyncio.get_running_loop().time()
    yield "retry: 3000\n\n"
    while not await request.is_disconnected():
        poll = await run_in_threadpool(_poll, run_id, after_metric, after_log)
        if poll is None:
            yield _message("end", {"reason": "deleted"})
            return
        sent = False
        if poll["metrics"]:
            after_metric = poll["metrics"][-1]["id"]
            yield _message("metrics", poll["metrics"], f"{after_metric}:{after_log}")
            sent = True
        if poll["logs"]:
            after_log = poll["logs"][-1]["id"]
            yield _message("log", poll["logs"], f"{after_metric}:{after_log}")
            sent = True
        status_now = {k: v for k, v in poll["run"].items() if k not in _CLOCK_FIELDS}
        if status_now != last_status or sent:
            last_status = status_now
            yield _message("status", poll["run"])
            sent = True
        if poll["checkpoints"] != last_checkpoints:
            last_checkpoints = poll["checkpoints"]
            yield _message("checkpoints", poll["checkpoints"])
            sent = True
        if poll["finished"]:
            yield _message("end", poll["run"])
            return
        now = asyncio.get_running_loop().time()
        if sent:
            quiet_since = now
        elif now - quiet_since >= KEEPALIVE_S:
            quiet_since = now
            yield ": keep-alive\n\n"
        if len(poll["metrics"]) < run_service.MAX_METRIC_ROWS:
            await asyncio.sleep(POLL_S)
