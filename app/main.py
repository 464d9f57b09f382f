"""create_app(): routers, static files, templates, sessions and error handlers."""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

import app.api as app_api
import app.web as app_web
from app.api import health
from app.config import settings
from app.db import new_session
from app.deps import LoginRequired
from app.errors import DomainError
from app.observability import RequestContextMiddleware, configure_json_logging, json_logs_wanted
from app.services import users as user_service
from app.templating import ROOT, render

API_PREFIX = "/api/v1"


def _router_modules(package: ModuleType) -> list[ModuleType]:
    """Every module of `package` that defines a `router` (one router per module, by name)."""
    modules = []
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        if isinstance(getattr(module, "router", None), APIRouter):
            modules.append(module)
    return modules


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or "text/html" not in request.headers.get(
        "accept", ""
    )


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(request: Request, error: DomainError) -> Response:
        if _wants_json(request):
            body: dict[str, object] = {"detail": error.message}
            if error.details is not None:
                body["details"] = error.details
            headers = {"WWW-Authenticate": "Bearer"} if error.status_code == 401 else None
            return JSONResponse(body, status_code=error.status_code, headers=headers)
        return render(request, "error.html", status_code=error.status_code,
                      message=error.message, status=error.status_code)

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, _error: LoginRequired) -> Response:
        with new_session() as session:
            if user_service.count(session=session) == 0:
                return RedirectResponse("/setup", status_code=303)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        if _wants_json(request):
            return JSONResponse({"detail": error.detail}, status_code=error.status_code)
        return render(request, "error.html", status_code=error.status_code,
                      message=str(error.detail), status=error.status_code)


def create_app() -> FastAPI:
    """Build the Polytag ASGI app."""
    settings.check_production()
    if json_logs_wanted():
        configure_json_logging()
    app = FastAPI(
        title="Polytag",
        version="0.1.0",
        description="Multi-label image tagging, training, evaluation and prediction.",
    )
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.secret_key,
        session_cookie="polytag_session",
        max_age=settings.session_max_age_s,
        same_site="lax",
        https_only=settings.env == "production" and settings.base_url.startswith("https"),
    )
    # Added last, so outermost: it times and ids everything, error responses included.
    app.add_middleware(RequestContextMiddleware)
    app.mount("/static", StaticFiles(directory=str(ROOT / "static")), name="static")
    app.include_router(health.router)
    for module in _router_modules(app_api):
        if module is not health:
            app.include_router(module.router, prefix=API_PREFIX)
    for module in _router_modules(app_web):
        app.include_router(module.router)
    _install_error_handlers(app)
    return app
