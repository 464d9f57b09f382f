"""Jinja2 templates (autoescaped) with the helpers every page uses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from app.deps import csrf_token

ROOT = Path(__file__).resolve().parent.parent
templates = Jinja2Templates(directory=str(ROOT / "templates"))


def flash(request: Request, message: str, category: str = "info") -> None:
    """Queue a message for the next rendered page."""
    request.session.setdefault("flashes", []).append([category, message])


def _pop_flashes(request: Request) -> list[list[str]]:
    return list(request.session.pop("flashes", []))


def render(
    request: Request, template: str, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """Render a page with the user, CSRF token and pending flash messages."""
    context.setdefault("user", getattr(request.state, "user", None))
    context["csrf_token"] = csrf_token(request)
    context["flashes"] = _pop_flashes(request)
    return templates.TemplateResponse(request, template, context, status_code=status_code)
