"""Every HTML page that shows project or account data needs a signed-in user."""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

import app.web as web_package
from app.main import _router_modules
from app.models import User

PUBLIC = {"/setup", "/login", "/logout", "/favicon.ico", "/metrics"}


def _page_routes() -> list[str]:
    paths = []
    for module in _router_modules(web_package):
        for route in module.router.routes:
            if isinstance(route, APIRoute) and "GET" in route.methods and route.path not in PUBLIC:
                paths.append(re.sub(r"\{[a-z_]+\}", "1", route.path))
    assert len(paths) >= 8
    return sorted(set(paths))


@pytest.mark.parametrize("path", _page_routes())
def test_pages_send_anonymous_visitors_to_login(
    client: TestClient, user: User, path: str
) -> None:
    response = client.get(path, follow_redirects=False)
    assert response.status_code == 303, (path, response.status_code)
    assert response.headers["location"].startswith("/login?next=")
