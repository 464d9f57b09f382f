"""Request ids in and out, one access log line and one latency observation per request."""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.observability.logs import request_id_var
from app.observability.metrics import REQUEST_LATENCY

REQUEST_ID_HEADER = "X-Request-ID"
# Ids we accept from clients or proxies; anything else is replaced so logs stay parseable.
_REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")

access_logger = logging.getLogger("polytag.access")


def _incoming_request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            candidate = value.decode("latin-1").strip()
            if _REQUEST_ID_PATTERN.fullmatch(candidate):
                return candidate
            break
    return uuid.uuid4().hex


def route_template(scope: Scope) -> str:
    """The matched route's path template ("/api/v1/projects/{project_id}"), or "<unmatched>"."""
    route = scope.get("route")
    template = getattr(route, "path", None)
    path: str = scope["path"]
    if isinstance(template, str) and template:
        # A route of an included router knows only its own part ("/projects/{project_id}");
        # the router prefix is the part of the request path in front of what its pattern matches.
        pattern = getattr(route, "path_regex", None)
        if pattern is not None and not pattern.match(path):
            for index, char in enumerate(path):
                if char == "/" and index and pattern.match(path[index:]):
                    return path[:index] + template
        return template
    if scope.get("endpoint") is not None:  # a mount, e.g. StaticFiles at /static
        mount = str(scope.get("root_path", ""))[len(str(scope.get("app_root_path", ""))) :]
        if mount:
            return mount + "/{path}"
    return "<unmatched>"


class RequestContextMiddleware:
    """Request id in and out (`X-Request-ID`), an access log line, a latency observation.

    Latency is labelled by route template, never by raw path, so ids in URLs do not multiply
    the series.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection (only HTTP requests are instrumented)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope)
        token = request_id_var.set(request_id)
        status = 500  # what the client gets if the app raises before answering
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = MutableHeaders(scope=message)
                if REQUEST_ID_HEADER not in headers:
                    headers.append(REQUEST_ID_HEADER, request_id)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = route_template(scope)
            REQUEST_LATENCY.labels(scope["method"], route, str(status)).observe(elapsed)
            access_logger.log(
                logging.ERROR if status >= 500 else logging.INFO,
                "%s %s %d %.1fms",
                scope["method"],
                scope["path"],
                status,
                elapsed * 1000,
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                    "client": (scope.get("client") or ("", 0))[0],
                },
            )
            request_id_var.reset(token)
