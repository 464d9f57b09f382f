"""Pages: first-run setup, sign in, sign out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from app.db import SessionDep
from app.deps import check_csrf
from app.errors import DomainError
from app.security import new_csrf_token
from app.services import users as user_service
from app.templating import flash, render

router = APIRouter(include_in_schema=False)


def _sign_in(request: Request, user_id: int) -> None:
    # A fresh session on sign-in: nothing from before (a planted CSRF token) carries over.
    request.session.clear()
    request.session["user_id"] = user_id
    request.session["csrf"] = new_csrf_token()


@router.get("/favicon.ico")
def favicon() -> Response:
    """Browsers ask for /favicon.ico whatever the page says; point them at the SVG."""
    return RedirectResponse("/static/favicon.svg", status_code=301)


@router.get("/setup")
def setup_page(request: Request, session: SessionDep) -> Response:
    """The one-time page that creates the first (admin) account."""
    if user_service.count(session=session) > 0:
        return RedirectResponse("/login", status_code=303)
    return render(request, "setup.html")


@router.post("/setup")
def setup_submit(
    request: Request,
    session: SessionDep,
    email: Annotated[str, Form()],
    password: Annotated[str, Form()],
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Create the admin and sign them in."""
    check_csrf(request, csrf_token)
    try:
        user = user_service.create_first_admin(session=session, email=email, password=password)
    except DomainError as error:
        return render(request, "setup.html", status_code=error.status_code,
                      error=error.message, email=email)
    _sign_in(request, user.id)
    flash(request, "Welcome to Polytag. Create your first project.", "success")
    return RedirectResponse("/", status_code=303)


@router.get("/login")
def login_page(request: Request, session: SessionDep, next: str = "/") -> Response:
    """The sign-in page (or setup, while no account exists)."""
    if user_service.count(session=session) == 0:
        return RedirectResponse("/setup", status_code=303)
    return render(request, "login.html", next=_safe_next(next))


def _safe_next(target: str) -> str:
    # Only same-site paths, so the login page cannot be used as an open redirect.
    return target if target.startswith("/") and not target.startswith("//") else "/"


@router.post("/login")
def login_submit(
    request: Request,
    session: SessionDep,
    email: Annotated[str, Form()],
    password: Annotated[str, Form()],
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    """Check the password and start a session."""
    check_csrf(request, csrf_token)
    try:
        user = user_service.authenticate(session=session, email=email, password=password)
    except DomainError as error:
        return render(request, "login.html", status_code=error.status_code,
                      error=error.message, email=email, next=_safe_next(next))
    _sign_in(request, user.id)
    return RedirectResponse(_safe_next(next), status_code=303)


@router.post("/logout")
def logout(request: Request, csrf_token: Annotated[str, Form()] = "") -> Response:
    """End the session."""
    check_csrf(request, csrf_token)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)
