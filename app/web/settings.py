"""Pages: account settings (API keys) and user management."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.db import SessionDep
from app.deps import PageUser
from app.services import api_keys as api_key_service
from app.services import users as user_service
from app.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/settings")
def settings_page(request: Request, session: SessionDep, user: PageUser) -> Response:
    """API keys of the signed-in user, and the user list for admins."""
    keys = api_key_service.get_all(session=session, user=user)
    users = user_service.get_all(session=session) if user.is_admin else []
    return render(request, "settings.html", api_keys=keys, users=users)
